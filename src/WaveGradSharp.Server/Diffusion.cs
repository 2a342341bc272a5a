using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Imaging;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Server;

/// <summary>The page's view of the diffusion itself: every reverse step of a short render, and an image model's trajectory.</summary>
public sealed partial class SpeechServer
{
    /// <summary>Image models tried for the trajectory tab, in order.</summary>
    const string ImageModelName = "mnist-ddpm";
    Lazy<(ImageModel Model, UNet Net)>? images;

    /// <summary>
    /// <c>POST /v1/denoise</c> <c>{"input", "voice"?, "steps"?, "sampler"?, "seed"?, "start"?}</c>: the first sentence's mel (its first
    /// <see cref="ServeOptions.MaxDenoiseFrames"/> frames) rendered once, with the estimate x̂₀ after every network evaluation (from
    /// <see cref="SynthesisOptions.Estimates"/>) as 16-bit PCM and as a log-mel spectrogram, x_t's spectrogram beside it, then
    /// the finished render. By default it starts from noise, so that the first steps are noise.
    /// </summary>
    async Task Denoise(HttpContext ctx)
    {
        using var deadline = Deadline(ctx);
        using var body = await ReadBody(ctx, deadline.Token);
        var request = Json(body);
        string input = StringField(request, "input", required: true, max: options.MaxTextChars)!;
        var sentences = TextToSpeech.Sentences(input);
        if (sentences.Count == 0) throw ApiError.Field("input", "input has no words to speak");
        var v = VoiceNamed(StringField(request, "voice", required: false, max: 200));
        string start = StringField(request, "start", false, 20) ?? "noise";
        var synthesis = RenderOptions(v, StringField(request, "sampler", false, 20), Steps(request), Seed(request), start);
        if (v.Speech.Frontend.Name == "none")
            throw new ApiError(503, "no text frontend on the server: install festival (or espeak-ng)", "server_error", code: "no_frontend");
        using var slot = await EnterGate(deadline.Token);
        var rendering = Stopwatch.StartNew();
        try
        {
            var result = await renderThreads.Run(() => DenoiseSteps(v, sentences[0], synthesis, deadline.Token));
            await Results.Json(result).ExecuteAsync(ctx);
        }
        finally { RenderDone(rendering.Elapsed.TotalSeconds); }
    }

    object DenoiseSteps(ServedVoice v, string sentence, SynthesisOptions synthesis, CancellationToken ct)
    {
        var voice = v.Vocoder.Voice;
        using var scope = NewDisposeScope();
        var full = v.Speech.Frontend.Mel(sentence, voice.Mel, ct);
        var mel = full[.., ..(int)Math.Min(full.shape[1], options.MaxDenoiseFrames)].contiguous();
        var estimates = new List<DenoisingEstimate>();
        var audio = v.Vocoder.Synthesize(mel, synthesis with { Estimates = estimates.Add }, ct);
        // One scale for every spectrogram: the input mel's range, so that the frames compare.
        float lo = mel.min().item<float>(), hi = mel.max().item<float>();
        using var spec = new MelSpectrogram(voice.Mel);
        string Spectrogram(float[] x)
        {
            using var s = NewDisposeScope();
            var m = spec.Compute(tensor(x))[.., ..(int)mel.shape[1]];   // the render's frames: a centred analysis has one more
            var bytes = ((m - lo) / Math.Max(1e-6f, hi - lo) * 255).clamp(0, 255).to_type(ScalarType.Byte).contiguous().data<byte>().ToArray();
            return Convert.ToBase64String(bytes);
        }
        static string Pcm(float[] x)
        {
            var b = new byte[x.Length * 2];
            Wav.ToPcm16(x, b);
            return Convert.ToBase64String(b);
        }
        return new
        {
            sentence, sample_rate = v.Vocoder.SampleRate, n_mels = voice.Mel.NMels, frames = mel.shape[1], sampler = synthesis.Sampler!.Name,
            start = synthesis.Start == SamplerStart.Noise ? "noise" : "griffin-lim",
            steps = estimates.Select(e => new
            {
                evaluation = e.Evaluation, noise_std = e.NoiseStd, estimate_pcm = Pcm(e.Estimate), estimate_mel = Spectrogram(e.Estimate),
                noisy_mel = Spectrogram(e.Noisy),
            }).ToList(),   // now: the tensors are freed when this returns
            final = new { pcm = Pcm(audio), mel = Spectrogram(audio) },
        };
    }

    /// <summary>
    /// <c>GET /v1/images/trajectory?digit=7&amp;seed=1&amp;steps=50&amp;sampler=ddim</c>: one digit drawn by the image model through the same
    /// engine, with x_t at every evaluation (as <c>wavegrad image sample --trajectory</c> records it), as 8-bit grey pixels.
    /// </summary>
    async Task ImageTrajectory(HttpContext ctx)
    {
        using var deadline = Deadline(ctx);
        var q = ctx.Request.Query;
        int digit = Query(q, "digit") is not string d ? 7
            : int.TryParse(d, out var c) && c is >= 0 and <= 9 ? c : throw ApiError.Field("digit", "digit must be 0 to 9");
        long seed = Query(q, "seed") is string s ? long.TryParse(s, out var n) ? n : throw ApiError.Field("seed", "seed must be a whole number") : 1;
        int steps = Query(q, "steps") is string st ? int.TryParse(st, out var k) && k >= 2 && k <= 100 ? k
            : throw ApiError.Field("steps", "steps must be a whole number from 2 to 100") : 50;
        string sampler = Query(q, "sampler") ?? "ddim";
        if (sampler is not ("ddim" or "respaced" or "ode")) throw ApiError.Field("sampler", "sampler must be ddim, respaced or ode");
        images ??= new(() =>
        {
            var model = ImageModel.Load(ImageModelName, "unet");
            return (model, model.CreateUNet(CPU));
        });
        using var slot = await EnterGate(deadline.Token);
        var rendering = Stopwatch.StartNew();
        try
        {
            var result = await renderThreads.Run(() =>
            {
                (ImageModel model, UNet net) = images.Value;
                RecordingDenoiser? rec = null;
                using var scope = NewDisposeScope();
                var req = new ImageSampleRequest { Sampler = sampler, Steps = steps, Class = digit, Count = 1, Seed = seed };
                var x = ImageSampling.Sample(model, net, req, CPU, null, deadline.Token, inner => rec = new RecordingDenoiser(inner));
                static string Grey(Tensor img) => Convert.ToBase64String(((img.clamp(-1, 1) + 1) * 127.5).round().to_type(ScalarType.Byte)
                    .contiguous().data<byte>().ToArray());
                var frames = rec!.Frames;
                var picked = frames.Select(f => new { sigma = f.Sigma, pixels = Grey(f.Image) }).ToList();
                foreach (var f in frames) f.Image.Dispose();
                return new { digit, sampler, size = (int)x.shape[^1], channels = (int)x.shape[1], frames = picked, result = Grey(x[0]) };
            });
            await Results.Json(result).ExecuteAsync(ctx);
        }
        catch (WaveGradException e) when (e.Message.Contains(ImageModelName, StringComparison.Ordinal))
        {
            images = null;
            throw new ApiError(503, $"no image model on the server ({Text.FirstLine(e.Message)})", "server_error", code: "no_image_model");
        }
        finally { RenderDone(rendering.Elapsed.TotalSeconds); }
    }
}

/// <summary>The page's files, embedded in the assembly (no build step, nothing on disk to find).</summary>
static class Page
{
    static readonly Dictionary<string, (string Type, byte[] Bytes)> files = Load();

    static Dictionary<string, (string, byte[])> Load()
    {
        var asm = typeof(Page).Assembly;
        var result = new Dictionary<string, (string, byte[])>(StringComparer.Ordinal);
        foreach (var name in asm.GetManifestResourceNames().Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal)))
        {
            using var s = asm.GetManifestResourceStream(name)!;
            using var m = new MemoryStream();
            s.CopyTo(m);
            string file = name["wwwroot/".Length..];
            string type = Path.GetExtension(file) switch
            {
                ".html" => "text/html; charset=utf-8", ".js" => "text/javascript; charset=utf-8", ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml", _ => "application/octet-stream",
            };
            result[file] = (type, m.ToArray());
        }
        return result;
    }

    public static IResult Serve(HttpContext ctx, string name)
    {
        if (!files.TryGetValue(name, out var f)) return Results.NotFound();
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'";
        ctx.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Bytes(f.Bytes, f.Type);
    }
}
