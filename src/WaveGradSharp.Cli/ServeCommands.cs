using System.CommandLine;
using Microsoft.Extensions.Hosting;
using WaveGradSharp.Core;
using WaveGradSharp.Server;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad serve</c>: the flags of <see cref="ServeOptions"/>, then the server until SIGTERM or Ctrl+C.</summary>
static class ServeCommands
{
    public static Command Serve()
    {
        var d = new ServeOptions();
        var urls = new Option<string>("--urls") { Description = "Where to listen, ';'-separated (port 0: any free port)", DefaultValueFactory = _ => d.Urls };
        var apiKey = new Option<string?>("--api-key")
        {
            Description = $"Require 'Authorization: Bearer KEY' on /v1/ and /metrics (default: ${ServeOptions.ApiKeyVariable}, else no key)",
        };
        var voices = new Option<string[]>("--voice")
        {
            Description = "A voice to serve (repeat for more; the first also answers OpenAI's voice names)",
            DefaultValueFactory = _ => [VocoderCommands.DefaultVoice],
        };
        var device = Cli.Device();
        var precision = VocoderCommands.PrecisionOpt();
        var inFlight = new Option<int>("--max-in-flight")
        {
            Description = "Renders at once (one voice takes turns on its network)", DefaultValueFactory = _ => d.MaxInFlight,
        };
        var queue = new Option<int>("--max-queue") { Description = "Renders waiting; past them: 429 with Retry-After", DefaultValueFactory = _ => d.MaxQueue };
        var body = new Option<long>("--max-body-bytes") { Description = "Largest request body", DefaultValueFactory = _ => d.MaxBodyBytes };
        var text = new Option<int>("--max-text-chars") { Description = "Longest input text", DefaultValueFactory = _ => d.MaxTextChars };
        var frames = new Option<int>("--max-mel-frames") { Description = "Longest mel vocoded", DefaultValueFactory = _ => d.MaxMelFrames };
        var deadline = new Option<double>("--deadline-seconds")
        {
            Description = "Per request, queueing included: a 504 before the first byte, a cut response after it",
            DefaultValueFactory = _ => d.Deadline.TotalSeconds,
        };
        var drain = new Option<double>("--drain-seconds")
        {
            Description = "On SIGTERM, how long requests in flight may take before the server exits",
            DefaultValueFactory = _ => d.Drain.TotalSeconds,
        };
        var cmd = new Command("serve", "Serve speech over HTTP: OpenAI's /v1/audio/speech, /v1/vocode, a playback page at /, /metrics")
            { urls, apiKey, voices, device, precision, inFlight, queue, body, text, frames, deadline, drain };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            int Positive(Option<int> o)
            {
                int v = pr.GetValue(o);
                return v >= 1 ? v : throw new WaveGradException($"{o.Name} {v}: must be at least 1");
            }
            TimeSpan Seconds(Option<double> o)
            {
                double v = pr.GetValue(o);
                return v > 0 && v <= 86400 ? TimeSpan.FromSeconds(v) : throw new WaveGradException($"{o.Name} {v}: must be in (0, 86400]");
            }
            if (pr.GetValue(queue) < 0) throw new WaveGradException($"--max-queue {pr.GetValue(queue)}: must be 0 or more");
            if (pr.GetValue(body) < 1024) throw new WaveGradException($"--max-body-bytes {pr.GetValue(body)}: must be at least 1024");
            var options = new ServeOptions
            {
                Urls = pr.GetValue(urls)!, ApiKey = pr.GetValue(apiKey) ?? Environment.GetEnvironmentVariable(ServeOptions.ApiKeyVariable),
                Voices = pr.GetValue(voices)!, Device = pr.GetValue(device)!, Precision = pr.GetValue(precision)!,
                MaxInFlight = Positive(inFlight), MaxQueue = pr.GetValue(queue), MaxBodyBytes = pr.GetValue(body), MaxTextChars = Positive(text),
                MaxMelFrames = Positive(frames), Deadline = Seconds(deadline), Drain = Seconds(drain),
            };
            var server = SpeechServer.Create(options);
            try
            {
                server.App.StartAsync().GetAwaiter().GetResult();
                Console.WriteLine($"wavegrad serve: {string.Join(", ", server.Addresses)} (voices {string.Join(", ", options.Voices)}; " +
                    $"{options.MaxInFlight} rendering, {options.MaxQueue} queued; {(options.ApiKey is null ? "no API key" : "API key required")})");
                // SIGTERM or Ctrl+C: no new connections; requests in flight get --drain-seconds to finish, then the process exits 0.
                server.App.WaitForShutdownAsync().GetAwaiter().GetResult();
            }
            finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            Console.WriteLine("wavegrad serve: stopped");
            return 0;
        }));
        return cmd;
    }
}
