using Prometheus;

namespace WaveGradSharp.Server;

/// <summary>What <c>/metrics</c> reports, in a registry of this server's own (so that several servers in one process, as in
/// the tests, do not share counts): requests and errors by route and status, renders queued and running, audio rendered,
/// time to first byte, and the process's memory and threads (prometheus-net's .NET collectors).</summary>
public sealed class ServerMetrics
{
    /// <summary>The registry /metrics exports.</summary>
    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();
    /// <summary>Requests answered, by route and status.</summary>
    public Counter Requests { get; }
    /// <summary>Requests answered 4xx or 5xx (or cut off mid-stream), by route and error type.</summary>
    public Counter Errors { get; }
    /// <summary>Renders waiting for a slot.</summary>
    public Gauge QueueDepth { get; }
    /// <summary>Renders running.</summary>
    public Gauge InFlight { get; }
    /// <summary>Seconds of audio sent to clients.</summary>
    public Counter AudioSeconds { get; }
    /// <summary>Seconds from a render request's arrival to its first audio byte.</summary>
    public Histogram TimeToFirstByte { get; }

    /// <summary>Creates the collectors.</summary>
    public ServerMetrics()
    {
        var f = Metrics.WithCustomRegistry(Registry);
        Requests = f.CreateCounter("wavegrad_requests_total", "HTTP requests answered.", "route", "status");
        Errors = f.CreateCounter("wavegrad_errors_total", "Requests refused or failed (4xx, 5xx, or cut off mid-stream).", "route", "type");
        QueueDepth = f.CreateGauge("wavegrad_render_queue_depth", "Renders waiting for a slot.");
        InFlight = f.CreateGauge("wavegrad_renders_in_flight", "Renders running.");
        AudioSeconds = f.CreateCounter("wavegrad_audio_seconds_total", "Seconds of audio sent.", "route");
        TimeToFirstByte = f.CreateHistogram("wavegrad_time_to_first_byte_seconds", "From a render request's arrival to its first audio byte.",
            new HistogramConfiguration { LabelNames = ["route"], Buckets = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60] });
        DotNetStats.Register(Registry);
    }
}
