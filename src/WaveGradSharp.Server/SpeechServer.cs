using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Prometheus;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Vocoder;

namespace WaveGradSharp.Server;

/// <summary>A voice the server renders with: its vocoder and the text-to-speech pipeline over it.</summary>
public sealed record ServedVoice(Vocoder.Vocoder Vocoder, TextToSpeech Speech)
{
    /// <summary>The voice's name.</summary>
    public string Name => Vocoder.Voice.Name;
}

/// <summary>
/// <c>wavegrad serve</c>: ASP.NET Core minimal APIs on Kestrel. <c>POST /v1/audio/speech</c> in OpenAI's shape and
/// <c>POST /v1/vocode</c> stream audio as the renderer yields it; <c>POST /v1/denoise</c> and <c>GET /v1/images/trajectory</c>
/// show the diffusion at work; <c>GET /</c> is the page. Renders pass one <see cref="RenderGate"/>; every refusal is one
/// line of JSON (<see cref="ApiError"/>). The server holds no state between requests, so replicas sit behind any load balancer.
/// </summary>
public sealed partial class SpeechServer : IAsyncDisposable
{
    /// <summary>OpenAI's voice names: clients hard-wire them, so they select the first voice served.</summary>
    public static IReadOnlyList<string> OpenAiVoiceNames { get; } =
        ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"];
    /// <summary>The formats <c>response_format</c> takes: a WAV whose header leaves the length open (sizes 0xFFFFFFFF), or raw PCM.</summary>
    public static IReadOnlyList<string> ResponseFormats { get; } = ["wav", "pcm"];

    readonly ServeOptions options;
    readonly Dictionary<string, ServedVoice> voices;
    readonly ServedVoice firstVoice;
    readonly RenderGate gate;
    readonly RenderThreads renderThreads;
    /// <summary>Hands libtorch's freed blocks back after renders once the process has grown 64 MB: without it, glibc keeps them
    /// and a server's memory creeps up render after render.</summary>
    readonly NativeHeapWatch heap = new(64L << 20);
    readonly byte[]? keyHash;
    readonly ILogger log;
    readonly bool ownsVoices;
    double renderSecondsAverage = 2;

    /// <summary>The application: start it with <see cref="WebApplication.StartAsync"/> or run it with <see cref="WebApplication.RunAsync"/>.</summary>
    public WebApplication App { get; }
    /// <summary>Its collectors.</summary>
    public ServerMetrics Metrics { get; } = new();
    /// <summary>The options it runs with.</summary>
    public ServeOptions Options => options;

    SpeechServer(ServeOptions options, IReadOnlyList<ServedVoice> served, TextWriter logOutput, bool ownsVoices)
    {
        this.ownsVoices = ownsVoices;
        if (served.Count == 0) throw new WaveGradException("serve: no voices to serve");
        this.options = options;
        voices = served.ToDictionary(v => v.Name, StringComparer.Ordinal);
        firstVoice = served[0];
        gate = new RenderGate(options.MaxInFlight, options.MaxQueue);
        renderThreads = new RenderThreads(options.MaxInFlight);
        keyHash = string.IsNullOrEmpty(options.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new OneLineLoggerProvider(logOutput));
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.UseShutdownTimeout(options.Drain);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.Drain);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = DrainLimit(options);
            k.Limits.MaxConcurrentConnections = 256;
            k.Limits.MaxRequestHeadersTotalSize = 16 << 10;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
            k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            // A slow upload is cut (408) once it averages under 1 kB/s after 5 s of grace.
            k.Limits.MinRequestBodyDataRate = new(1024, TimeSpan.FromSeconds(5));
        });
        App = builder.Build();
        log = App.Services.GetRequiredService<ILoggerFactory>().CreateLogger("wavegrad.serve");
        App.Use(Guard);
        Map(App);
    }

    /// <summary>Loads the voices of <paramref name="options"/> and builds the server; <paramref name="logOutput"/> gets its log
    /// (default: standard error).</summary>
    public static SpeechServer Create(ServeOptions options, TextWriter? logOutput = null)
    {
        var device = Devices.Resolve(options.Device);
        var served = new List<ServedVoice>();
        try
        {
            foreach (var name in options.Voices.Distinct())
            {
                var vocoder = Vocoder.Vocoder.Load(name, device, dtype: Devices.InferenceType(options.Precision, device));
                served.Add(new ServedVoice(vocoder, new TextToSpeech(vocoder)));
            }
            var server = new SpeechServer(options, served, logOutput ?? Console.Error, ownsVoices: true);
            try { server.WarmUp(); }
            catch
            {
                server.App.DisposeAsync().AsTask().GetAwaiter().GetResult();   // the voices are freed below
                server.renderThreads.Dispose();
                throw;
            }
            return server;
        }
        catch
        {
            foreach (var v in served) v.Vocoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Renders once with every voice on every render thread (<see cref="Vocoder.Vocoder.WarmUp"/>), as a request to speak would: the
    /// first request after start otherwise paid every first-call cost, the compiler's above all.
    /// </summary>
    void WarmUp()
    {
        var runs = new List<Task<int>>();
        for (int i = 0; i < options.MaxInFlight; i++)
            foreach (var v in voices.Values)
                runs.Add(renderThreads.Run(() =>
                {
                    v.Vocoder.WarmUp(SpeechOptions.ForListening(v.Vocoder.Voice));
                    return 0;
                }));
        // All of them end before a failure is thrown: none may still render with a voice that the failure path frees.
        Task.WhenAll(runs).GetAwaiter().GetResult();
    }

    /// <summary>Builds a server over vocoders already loaded (which the caller keeps and disposes).</summary>
    public static SpeechServer Create(ServeOptions options, IReadOnlyList<ServedVoice> served, TextWriter? logOutput = null) =>
        new(options, served, logOutput ?? Console.Error, ownsVoices: false);

    /// <summary>The addresses it listens on, once started (the port chosen where port 0 was asked for).</summary>
    public IReadOnlyList<string> Addresses => App.Urls.ToList();

    /// <summary>Stops the application, and frees the vocoders it loaded.</summary>
    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        renderThreads.Dispose();
        if (ownsVoices) foreach (var v in voices.Values) v.Vocoder.Dispose();
    }

    /// <summary>
    /// Wraps every request: the API key on <c>/v1/</c> and <c>/metrics</c>, one log line, the request counters, and every failure
    /// turned into one line of JSON (a refusal's own status; anything unexpected a 500 whose log line has no stack trace).
    /// </summary>
    async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        var sw = Stopwatch.StartNew();
        string route = RouteLabel(ctx.Request.Path);
        string? errorType = null;
        try
        {
            if (keyHash is not null && (route.StartsWith("/v1/", StringComparison.Ordinal) || route == "/metrics") && !Authorized(ctx.Request))
                throw new ApiError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'", ApiError.InvalidRequest, code: "invalid_api_key");
            await next(ctx);
            if (ctx.Response.StatusCode >= 400 && !ctx.Response.HasStarted)
                throw ctx.Response.StatusCode switch
                {
                    404 => new ApiError(404, $"no such endpoint: {ctx.Request.Method} {ctx.Request.Path}", ApiError.InvalidRequest, code: "not_found"),
                    405 => new ApiError(405, $"{ctx.Request.Method} is not allowed on {ctx.Request.Path}", ApiError.InvalidRequest, code: "method_not_allowed"),
                    int s => new ApiError(s, $"request refused ({s})", ApiError.InvalidRequest),
                };
        }
        catch (Exception e) when (ctx.RequestAborted.IsCancellationRequested)
        {
            errorType = "client_closed";   // nobody to answer: the render stopped at its next chunk
            log.LogInformation("{Method} {Path}: client went away ({Type})", ctx.Request.Method, ctx.Request.Path.ToString(), e.GetType().Name);
        }
        catch (Exception e)
        {
            var error = AsApiError(e);
            errorType = error.Type;
            if (error.Status >= 500 && error.Type == "server_error")
                log.LogError("{Method} {Path}: {Error}", ctx.Request.Method, ctx.Request.Path.ToString(), $"{e.GetType().Name}: {Text.FirstLine(e.Message)}");
            if (ctx.Response.HasStarted) ctx.Abort();   // mid-stream: a cut response, never one that looks complete
            else
            {
                ctx.Response.Clear();
                // A body refused before its end was read (over the drain limit) leaves bytes on the connection: close it, so
                // that no later request is sent down it.
                if (error.Status == 413) ctx.Response.Headers.Connection = "close";
                try { await error.WriteAsync(ctx); } catch (Exception) when (ctx.RequestAborted.IsCancellationRequested) { }
            }
        }
        int status = errorType == "client_closed" ? 499 : ctx.Response.StatusCode;
        if (status >= 400) errorType ??= status >= 500 ? "server_error" : ApiError.InvalidRequest;
        Metrics.Requests.WithLabels(route, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
        if (errorType is not null) Metrics.Errors.WithLabels(route, errorType).Inc();
        log.LogInformation("{Method} {Path} {Status} {Ms} ms", ctx.Request.Method, ctx.Request.Path.ToString(), status,
            (long)sw.Elapsed.TotalMilliseconds);
    }

    /// <summary>A metric label for a path: the known routes, else "other" (a client must not create label values).</summary>
    static string RouteLabel(PathString path) => path.Value switch
    {
        "/v1/audio/speech" or "/v1/vocode" or "/v1/denoise" or "/v1/voices" or "/v1/models" or "/v1/images/trajectory" or "/healthz" or "/metrics"
            or "/" => path.Value,
        string p when p.StartsWith("/v1/", StringComparison.Ordinal) => "/v1/other",
        _ => "other",
    };

    /// <summary>What a failure tells the client: refusals as they are; the library's one-line errors as 400 naming the field;
    /// Kestrel's (body too large, too slow) with their status; anything else a bare 500.</summary>
    static ApiError AsApiError(Exception e) => e switch
    {
        ApiError a => a,
        BadHttpRequestException b => new ApiError(b.StatusCode, b.StatusCode switch
        {
            413 => "the request body is too large",
            408 => "the request body came too slowly",
            _ => $"bad request: {Text.FirstLine(b.Message)}",
        }, ApiError.InvalidRequest, code: b.StatusCode == 413 ? "too_large" : null),
        WaveGradException w => new ApiError(400, InRequestTerms(w), ApiError.InvalidRequest, w.Parameters.Count > 0 ? ParamName(w.Parameters[0]) : null,
            "invalid_value"),
        OperationCanceledException => new ApiError(504, "the request ran past its deadline", "timeout", code: "deadline_exceeded"),
        _ => new ApiError(500, "internal error (logged on the server)", "server_error"),
    };

    /// <summary>A library error's first line with its parameter names replaced by the request's fields (as the CLI puts its flags).</summary>
    static string InRequestTerms(WaveGradException w)
    {
        string m = Text.FirstLine(w.Message);
        foreach (var p in w.Parameters) m = System.Text.RegularExpressions.Regex.Replace(m, $@"\b{p}\b", ParamName(p));
        return m;
    }

    /// <summary>The request field a library parameter comes from.</summary>
    static string ParamName(string libraryParameter) => libraryParameter switch
    {
        "Steps" => "steps", "Sampler" => "sampler", "Text" => "input", "FramesFirst" => "frames_first", "Framing" => "framing",
        _ => libraryParameter,
    };

    bool Authorized(HttpRequest request)
    {
        string header = request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        if (!header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)) return false;
        // Hashes first: the comparison takes the same time whatever the key's length or how much of it matches.
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, keyHash);
    }

    void Map(WebApplication app)
    {
        app.MapGet("/", (HttpContext ctx) => Page.Serve(ctx, "index.html"));
        app.MapGet("/page/{name}", (HttpContext ctx, string name) => Page.Serve(ctx, name));
        app.MapGet("/healthz", () => Results.Json(new { status = "ok", voices = voices.Keys, running = gate.Running, queued = gate.Queued }));
        app.MapGet("/metrics", async (HttpContext ctx) =>
        {
            Metrics.QueueDepth.Set(gate.Queued);
            Metrics.InFlight.Set(gate.Running);
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await Metrics.Registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        });
        app.MapGet("/v1/voices", () => Results.Json(new
        {
            voices = voices.Values.Select(v => new
            {
                id = v.Name, sample_rate = v.Vocoder.SampleRate, mel_preset = v.Vocoder.Voice.Mel.Name, samplers = Voice.SamplerNames,
                default_sampler = v.Vocoder.Voice.DefaultSampler.Name, default_levels = v.Vocoder.Voice.DefaultSampler.Levels.Count,
            }),
            aliases = OpenAiVoiceNames, @default = firstVoice.Name, response_formats = ResponseFormats,
        }));
        app.MapGet("/v1/models", () => Results.Json(new
        {
            @object = "list",
            data = new[] { "wavegrad", "tts-1", "tts-1-hd" }.Select(id => new { id, @object = "model", owned_by = "wavegradsharp" }),
        }));
        app.MapPost("/v1/audio/speech", Speech);
        app.MapPost("/v1/vocode", Vocode);
        app.MapPost("/v1/denoise", Denoise);
        app.MapGet("/v1/images/trajectory", ImageTrajectory);
    }

    /// <summary>The request's deadline, linked to the client's connection.</summary>
    CancellationTokenSource Deadline(HttpContext ctx)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        cts.CancelAfter(options.Deadline);
        return cts;
    }

    /// <summary>The body, at most <see cref="ServeOptions.MaxBodyBytes"/> (413 beyond), read before any render slot is taken so that
    /// a slow upload holds none. A body over the limit is read to its end and discarded, up to <see cref="DrainLimit"/>, before the
    /// 413: a client still sending then reads the answer instead of a reset connection.</summary>
    async Task<MemoryStream> ReadBody(HttpContext ctx, CancellationToken ct)
    {
        if (ctx.Request.ContentLength > DrainLimit(options)) throw TooLarge();
        var body = new MemoryStream();
        var buffer = new byte[16384];
        bool tooLarge = ctx.Request.ContentLength > options.MaxBodyBytes;
        int n;
        while ((n = await ctx.Request.Body.ReadAsync(buffer, ct)) > 0)
        {
            tooLarge |= body.Length + n > options.MaxBodyBytes;
            if (!tooLarge) body.Write(buffer, 0, n);
        }
        if (tooLarge) throw TooLarge();
        body.Position = 0;
        return body;
    }

    /// <summary>Kestrel's own cap: the most bytes read from one request, counting those discarded after a 413.</summary>
    static long DrainLimit(ServeOptions options) => options.MaxBodyBytes > long.MaxValue / 4 ? long.MaxValue : 4 * options.MaxBodyBytes;

    ApiError TooLarge() => new(413, $"the request body is larger than {options.MaxBodyBytes} bytes", ApiError.InvalidRequest, code: "too_large");

    /// <summary>The served voice a request names: a voice's name, one of OpenAI's (the first voice), or none (the first voice).</summary>
    ServedVoice VoiceNamed(string? name) =>
        name is null || OpenAiVoiceNames.Contains(name) ? firstVoice
        : voices.TryGetValue(name, out var v) ? v
        : throw ApiError.Field("voice", $"voice '{name}' is not served; use one of {string.Join(", ", voices.Keys)} (or OpenAI's names for " +
            $"{firstVoice.Name})");

    /// <summary>The render a request asks for: the voice's default sampler unless <c>sampler</c> or <c>steps</c> (a whole number,
    /// never a schedule file on the server) says otherwise, and a seed.</summary>
    SynthesisOptions RenderOptions(ServedVoice v, string? sampler, string? steps, long? seed, string? start)
    {
        if (sampler is not null && !Voice.SamplerNames.Contains(sampler))
            throw ApiError.Field("sampler", $"sampler '{sampler}' is unknown; use {string.Join(", ", Voice.SamplerNames)}");
        if (steps is not null && !(steps.Length <= 4 && steps.All(char.IsAsciiDigit) && int.Parse(steps) is >= 1 and var n && n <= options.MaxSteps))
            throw ApiError.Field("steps", $"steps must be a whole number from 1 to {options.MaxSteps}");
        var voice = v.Vocoder.Voice;
        // Streamed to a listener: the voice's defaults over the low-latency ones (see SynthesisOptions.LowLatency).
        var defaults = voice.RenderDefaults(SynthesisOptions.LowLatency);
        return defaults with
        {
            Sampler = sampler is null && steps is null ? voice.DefaultSampler : voice.Sampler(sampler ?? voice.DefaultSampler.Name, steps),
            Seed = seed ?? 1234,
            Start = start switch
            {
                null => defaults.Start,
                "griffin-lim" => SamplerStart.GriffinLim,
                "noise" => SamplerStart.Noise,
                _ => throw ApiError.Field("start", "start must be griffin-lim or noise"),
            },
        };
    }

    /// <summary>A slot for a render, or 429 with Retry-After: about one render's time, measured.</summary>
    async Task<IDisposable> EnterGate(CancellationToken ct)
    {
        var slot = await gate.TryEnterAsync(ct);
        Metrics.QueueDepth.Set(gate.Queued);
        Metrics.InFlight.Set(gate.Running);
        if (slot is not null) return slot;
        int wait = Math.Clamp((int)Math.Ceiling(Volatile.Read(ref renderSecondsAverage)), 1, 60);
        throw new ApiError(429, $"the server is at capacity ({options.MaxInFlight} rendering, {options.MaxQueue} queued); retry in {wait} s",
            "rate_limit_error", code: "rate_limit_exceeded") { RetryAfterSeconds = wait };
    }

    void RenderDone(double seconds)
    {
        Metrics.QueueDepth.Set(gate.Queued);
        Metrics.InFlight.Set(gate.Running);
        lock (heap) heap.Check();
        double avg = Volatile.Read(ref renderSecondsAverage);
        Volatile.Write(ref renderSecondsAverage, avg * 0.8 + seconds * 0.2);
    }

    async Task Speech(HttpContext ctx)
    {
        var arrived = Stopwatch.StartNew();
        using var deadline = Deadline(ctx);
        using var body = await ReadBody(ctx, deadline.Token);
        var request = Json(body);
        StringField(request, "model", required: true, max: 200);
        string input = StringField(request, "input", required: true, max: options.MaxTextChars)!;
        if (TextToSpeech.Sentences(input).Count == 0) throw ApiError.Field("input", "input has no words to speak");
        var v = VoiceNamed(StringField(request, "voice", required: false, max: 200));
        string format = Format(StringField(request, "response_format", required: false, max: 20));
        if (Number(request, "speed") is double speed && speed != 1)
            throw ApiError.Field("speed", speed is >= 0.25 and <= 4 ? "only speed 1.0 is rendered" : "speed must be from 0.25 to 4.0", "unsupported_value");
        var synthesis = RenderOptions(v, StringField(request, "sampler", false, 20), Steps(request), Seed(request), StringField(request, "start", false, 20));
        if (v.Speech.Frontend.Name == "none")
            throw new ApiError(503, "no text frontend on the server: install festival (or espeak-ng)", "server_error", code: "no_frontend");
        var speech = new SpeechOptions { Synthesis = SpeechOptions.ForListening(synthesis) };
        await StreamAudio(ctx, "/v1/audio/speech", v, format, ct => v.Speech.Speak(input, speech, ct), arrived, deadline.Token);
    }

    async Task Vocode(HttpContext ctx)
    {
        var arrived = Stopwatch.StartNew();
        using var deadline = Deadline(ctx);
        var q = ctx.Request.Query;
        var v = VoiceNamed(Query(q, "voice"));
        string format = Format(Query(q, "response_format"));
        bool framesFirst = Query(q, "frames_first") switch
        {
            null or "false" or "0" => false,
            "true" or "1" => true,
            _ => throw ApiError.Field("frames_first", "frames_first must be true or false"),
        };
        var framing = v.Vocoder.Voice.InputFraming(Query(q, "framing"));
        long? seed = Query(q, "seed") is string s ? long.TryParse(s, out var n) ? n : throw ApiError.Field("seed", "seed must be a whole number") : null;
        var synthesis = RenderOptions(v, Query(q, "sampler"), Query(q, "steps"), seed, Query(q, "start"));
        using var body = await ReadBody(ctx, deadline.Token);
        // The same reading and checks as `wavegrad vocode`: MelFile.Load, then the voice's CheckInputMels.
        using var scope = TorchSharp.torch.NewDisposeScope();
        var mel = MelFile.Load(body, "the uploaded mel", framesFirst);
        var mels = v.Vocoder.CheckInputMels(mel, "the uploaded mel");
        if (mels.Count != 1) throw ApiError.Field("body", $"the uploaded mel is a batch of {mels.Count}: send one [n_mels, frames] mel per request");
        if (mels[0].shape[1] > options.MaxMelFrames)
            throw ApiError.Field("body", $"the uploaded mel has {mels[0].shape[1]} frames; the limit is {options.MaxMelFrames}", "too_large");
        var one = mels[0];
        await StreamAudio(ctx, "/v1/vocode", v, format, ct => v.Vocoder.SynthesizeInput(one, framing, synthesis, stream: true, ct), arrived, deadline.Token);
    }

    static string? Query(IQueryCollection q, string name) =>
        q.TryGetValue(name, out var values) ? values.Count == 1 ? values[0] : throw ApiError.Field(name, $"'{name}' is given more than once") : null;

    static string Format(string? f) => f switch
    {
        null or "wav" => "wav",
        "pcm" => "pcm",
        _ => throw ApiError.Field("response_format", $"response_format '{f}' is not rendered; use wav (the default here) or pcm (16-bit mono at the " +
            "voice's rate)", "unsupported_value"),
    };

    /// <summary>
    /// Runs a render on a thread of its own once a slot is free and streams its chunks out as they come: a WAV header whose
    /// sizes are 0xFFFFFFFF (the length is unknown until the end) or raw PCM, both 16-bit mono. Nothing is sent before the first
    /// chunk, so a render that fails at once is still a JSON error. The client's disconnect or the deadline cancels the render
    /// at its next chunk or network evaluation; the slot is freed only once the render has stopped.
    /// </summary>
    async Task StreamAudio(HttpContext ctx, string route, ServedVoice v, string format, Func<CancellationToken, IEnumerable<float[]>> render,
        Stopwatch arrived, CancellationToken ct)
    {
        using var slot = await EnterGate(ct);
        var rendering = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var chunks = System.Threading.Channels.Channel.CreateBounded<float[]>(new System.Threading.Channels.BoundedChannelOptions(2)
        { SingleReader = true, SingleWriter = true });
        var producer = renderThreads.Run(() =>
        {
            try
            {
                foreach (var chunk in render(stop.Token))
                    chunks.Writer.WriteAsync(chunk, stop.Token).AsTask().GetAwaiter().GetResult();
                chunks.Writer.Complete();
            }
            catch (Exception e) { chunks.Writer.Complete(e); }
            return 0;
        });
        try
        {
            int rate = v.Vocoder.SampleRate;
            byte[] bytes = [];
            bool started = false;
            await foreach (var chunk in chunks.Reader.ReadAllAsync(ct))
            {
                if (!started)
                {
                    started = true;
                    ctx.Response.StatusCode = 200;
                    ctx.Response.ContentType = format == "wav" ? "audio/wav" : "audio/pcm";
                    ctx.Response.Headers["X-Sample-Rate"] = rate.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    ctx.Response.Headers.CacheControl = "no-store";
                    if (format == "wav") await ctx.Response.Body.WriteAsync(Wav.StreamingHeader(rate), ct);
                    Metrics.TimeToFirstByte.WithLabels(route).Observe(arrived.Elapsed.TotalSeconds);
                }
                if (bytes.Length < chunk.Length * 2) bytes = new byte[chunk.Length * 2];
                Wav.ToPcm16(chunk, bytes);
                await ctx.Response.Body.WriteAsync(bytes.AsMemory(0, chunk.Length * 2), ct);
                await ctx.Response.Body.FlushAsync(ct);
                Metrics.AudioSeconds.WithLabels(route).Inc(chunk.Length / (double)rate);
            }
        }
        finally
        {
            stop.Cancel();
            try { await producer; } catch (Exception) { }   // the producer reports through the channel
            RenderDone(rendering.Elapsed.TotalSeconds);
        }
    }

    // ---- the request's JSON fields ----

    static JsonObject Json(MemoryStream body)
    {
        if (body.Length == 0) throw ApiError.Field("body", "the request body is empty: send a JSON object", "missing_field");
        try { return InputFile.ParseJsonObject(body.GetBuffer().AsSpan(0, (int)body.Length), "the request body"); }
        catch (WaveGradException e) { throw ApiError.Field("body", Text.FirstLine(e.Message), "invalid_json"); }
    }

    static string? StringField(JsonObject o, string name, bool required, int max)
    {
        var node = o[name];
        if (node is null) return required ? throw ApiError.Field(name, $"'{name}' is required", "missing_field") : null;
        if (node.GetValueKind() != JsonValueKind.String) throw ApiError.Field(name, $"'{name}' must be a string");
        string s = node.GetValue<string>();
        if (s.Length == 0) throw ApiError.Field(name, $"'{name}' is empty");
        if (s.Length > max) throw ApiError.Field(name, $"'{name}' has {s.Length} characters; the limit is {max}", "too_large");
        return s;
    }

    static double? Number(JsonObject o, string name) => o[name] switch
    {
        null => null,
        var n when n.GetValueKind() == JsonValueKind.Number => n.GetValue<double>(),
        _ => throw ApiError.Field(name, $"'{name}' must be a number"),
    };

    static string? Steps(JsonObject o) => o["steps"] switch
    {
        null => null,
        var n when n.GetValueKind() == JsonValueKind.Number => n.GetValue<double>() is var d && d == Math.Floor(d) && d is >= 1 and <= 9999
            ? ((int)d).ToString(System.Globalization.CultureInfo.InvariantCulture) : throw ApiError.Field("steps", "steps must be a whole number"),
        var n when n.GetValueKind() == JsonValueKind.String => n.GetValue<string>(),
        _ => throw ApiError.Field("steps", "steps must be a whole number"),
    };

    static long? Seed(JsonObject o) => o["seed"] switch
    {
        null => null,
        var n when n.GetValueKind() == JsonValueKind.Number && n.AsValue().TryGetValue<long>(out var s) => s,
        _ => throw ApiError.Field("seed", "seed must be a whole number"),
    };
}
