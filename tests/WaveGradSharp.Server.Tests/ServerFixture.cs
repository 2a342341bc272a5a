using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

namespace WaveGradSharp.Server.Tests;

/// <summary>All server tests share one loaded voice and run one at a time (two cores: renders would only slow each other).</summary>
[CollectionDefinition("server")]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>;

/// <summary>The default voice, loaded once, and servers over it on 127.0.0.1 with a free port each.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    /// <summary>Limits small enough to reach in a test.</summary>
    public static readonly ServeOptions Small = new()
    {
        Urls = "http://127.0.0.1:0", MaxInFlight = 1, MaxQueue = 1, MaxBodyBytes = 256 << 10, MaxTextChars = 400, MaxMelFrames = 600,
        Deadline = TimeSpan.FromSeconds(90), Drain = TimeSpan.FromSeconds(20),
    };

    public ServedVoice Voice { get; private set; } = null!;
    /// <summary>A server with <see cref="Small"/> limits, running for the whole collection.</summary>
    public SpeechServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    /// <summary>Its log.</summary>
    public StringWriter Log { get; } = new();

    public async Task InitializeAsync()
    {
        var vocoder = Vocoder.Vocoder.Load("slt-22k", CPU);
        Voice = new ServedVoice(vocoder, new TextToSpeech(vocoder));
        (Server, Client) = await Start(Small, TextWriter.Synchronized(Log));
    }

    /// <summary>Starts another server over the same voice (the caller disposes it).</summary>
    public async Task<(SpeechServer Server, HttpClient Client)> Start(ServeOptions options, TextWriter? log = null)
    {
        var server = SpeechServer.Create(options, [Voice], log ?? TextWriter.Null);
        await server.App.StartAsync();
        var client = new HttpClient { BaseAddress = new Uri(server.Addresses[0]), Timeout = TimeSpan.FromSeconds(120) };
        return (server, client);
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Voice.Vocoder.Dispose();
    }

    /// <summary>True where festival or espeak-ng can turn text into a mel (the speech endpoint's frontend).</summary>
    public static bool HasFrontend => SpeechFrontend.Available() is not null;

    /// <summary>The committed one-word mel (HiFi-GAN framing, 68 frames) as an .npy upload.</summary>
    public static byte[] WordMel => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fixtures", "word.npy"));

    /// <summary>The word's mel tiled <paramref name="times"/> times along its frames, as .npy bytes (optionally stored frames-first).</summary>
    public static byte[] TiledMel(int times, bool framesFirst = false)
    {
        using var scope = NewDisposeScope();
        var mel = MelFile.Load(Path.Combine(AppContext.BaseDirectory, "fixtures", "word.npy"));
        var tiled = cat(Enumerable.Repeat(mel, times).ToArray(), 1);
        string path = Path.Combine(Path.GetTempPath(), $"wavegrad-serve-test-{Guid.NewGuid():N}.npy");
        try
        {
            MelFile.Save(path, tiled, framesFirst);
            return File.ReadAllBytes(path);
        }
        finally { File.Delete(path); }
    }

    public static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    /// <summary>A POST whose response is handed over once its headers arrive (the body still streaming).</summary>
    public static Task<HttpResponseMessage> PostStreaming(HttpClient client, string url, HttpContent content) =>
        client.SendAsync(new HttpRequestMessage(HttpMethod.Post, url) { Content = content }, HttpCompletionOption.ResponseHeadersRead);

    public static ByteArrayContent Npy(byte[] bytes)
    {
        var c = new ByteArrayContent(bytes);
        c.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return c;
    }

    /// <summary>
    /// A streamed WAV as a client that reads to the end of the stream decodes it: the header must be mono 16-bit PCM with the
    /// open sizes (0xFFFFFFFF) the server documents; with the sizes filled in, the project's strict reader must accept it.
    /// </summary>
    public static (float[] Samples, int SampleRate) DecodeStreamedWav(byte[] bytes)
    {
        Assert.True(bytes.Length > 44, $"a WAV of {bytes.Length} bytes");
        Assert.Equal("RIFF", Encoding.ASCII.GetString(bytes, 0, 4));
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal("data", Encoding.ASCII.GetString(bytes, 36, 4));
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(40)));
        Assert.True((bytes.Length - 44) % 2 == 0, "whole 16-bit samples");
        var fixedUp = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(fixedUp.AsSpan(4), (uint)(bytes.Length - 8));
        BinaryPrimitives.WriteUInt32LittleEndian(fixedUp.AsSpan(40), (uint)(bytes.Length - 44));
        string path = Path.Combine(Path.GetTempPath(), $"wavegrad-serve-test-{Guid.NewGuid():N}.wav");
        try
        {
            File.WriteAllBytes(path, fixedUp);
            var samples = Wav.Read(path, out int rate);
            return (samples, rate);
        }
        finally { File.Delete(path); }
    }

    public static double Rms(float[] x) => Math.Sqrt(x.Sum(v => (double)v * v) / Math.Max(1, x.Length));

    /// <summary>Asserts OpenAI's error shape on one line, and returns the error object.</summary>
    public static async Task<JsonElement> OneLineError(HttpResponseMessage r, int status)
    {
        string body = await r.Content.ReadAsStringAsync();
        Assert.True(status == (int)r.StatusCode, $"expected {status}, got {(int)r.StatusCode}: {body}");
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        Assert.Single(body.TrimEnd('\n').Split('\n'));
        Assert.DoesNotContain("   at ", body);   // no stack trace
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        foreach (var field in new[] { "message", "type", "param", "code" }) Assert.True(error.TryGetProperty(field, out _), $"no '{field}' in {body}");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.DoesNotContain(error.GetProperty("message").GetString()!, c => char.IsControl(c));
        return error;
    }

    /// <summary>Waits until the server reports <paramref name="running"/> renders (or fails after 60 s).</summary>
    public static async Task WaitForRunning(HttpClient client, int running)
    {
        for (var until = DateTime.UtcNow.AddSeconds(60); DateTime.UtcNow < until; await Task.Delay(50))
        {
            var h = JsonDocument.Parse(await client.GetStringAsync("/healthz")).RootElement;
            if (h.GetProperty("running").GetInt32() == running) return;
        }
        Assert.Fail($"the server never had {running} render(s) running");
    }
}
