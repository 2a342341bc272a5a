namespace WaveGradSharp.Server;

/// <summary>
/// How <c>wavegrad serve</c> runs: where it listens, who may call it, and the limits that keep one process responsive
/// under load and hostile clients (renders in flight and queued, body size, text length, mel frames, deadlines).
/// </summary>
public sealed record ServeOptions
{
    /// <summary>The loopback address: nothing off the machine reaches the server unless <see cref="Urls"/> says so.</summary>
    public const string DefaultUrls = "http://127.0.0.1:8880";
    /// <summary>The environment variable read for <see cref="ApiKey"/> when none is given.</summary>
    public const string ApiKeyVariable = "WAVEGRAD_API_KEY";

    /// <summary>Addresses to listen on, separated by ';' (ASP.NET Core's <c>--urls</c>); port 0 picks a free port.</summary>
    public string Urls { get; init; } = DefaultUrls;
    /// <summary>When set, every <c>/v1/</c> request must carry <c>Authorization: Bearer KEY</c> (compared in constant time).</summary>
    public string? ApiKey { get; init; }
    /// <summary>Voices loaded at start (names or folders); the first answers OpenAI's voice names (alloy, nova, …).</summary>
    public IReadOnlyList<string> Voices { get; init; } = [Vocoder.Voice.DefaultName];
    /// <summary>auto, cpu or cuda.</summary>
    public string Device { get; init; } = "auto";
    /// <summary>auto, fp32 or bf16.</summary>
    public string Precision { get; init; } = "auto";
    /// <summary>Renders running at once. One vocoder takes turns on its network, so more than one per voice only queues inside it.</summary>
    public int MaxInFlight { get; init; } = 1;
    /// <summary>Renders waiting for a slot; one more is answered 429 with Retry-After.</summary>
    public int MaxQueue { get; init; } = 4;
    /// <summary>The largest request body (a .npy mel: 80 bands × 4,000 frames of float32 is 1.3 MB).</summary>
    public long MaxBodyBytes { get; init; } = 2 << 20;
    /// <summary>The longest text (OpenAI's limit).</summary>
    public int MaxTextChars { get; init; } = 4096;
    /// <summary>The longest mel vocoded (4,000 frames: 46 s at 22.05 kHz, hop 256).</summary>
    public int MaxMelFrames { get; init; } = 4000;
    /// <summary>The longest mel "watch it denoise" renders (its estimates travel as JSON, every step).</summary>
    public int MaxDenoiseFrames { get; init; } = 260;
    /// <summary>Most steps a client may ask for.</summary>
    public int MaxSteps { get; init; } = 200;
    /// <summary>From the request's arrival to its last byte, queueing included; past it the render stops (a 504 before the first
    /// byte, a cut response after it).</summary>
    public TimeSpan Deadline { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>On SIGTERM, how long requests in flight may take to finish before their connections are closed.</summary>
    public TimeSpan Drain { get; init; } = TimeSpan.FromSeconds(30);
}
