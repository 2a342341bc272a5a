using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using WaveGradSharp.Audio;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using TorchSharp;
using static TorchSharp.torch;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad bench</c>: render speed against the machine's own limit (see README.md, "Speed").</summary>
static class BenchCommands
{
    public static Command Create()
    {
        var voice = new Option<string>("--voice") { Description = "Voice to time", DefaultValueFactory = _ => VocoderCommands.DefaultVoice };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of audio of the steady-state render", DefaultValueFactory = _ => 30 };
        var steps = new Option<string?>("--steps")
        {
            Description = "What to time, comma-separated: schedules (wavegrad sampler) or counts of levels (others); default: the voice's sampler",
        };
        var sampler = new Option<string?>("--sampler") { Description = "Sampler (default: the voice's)" }.AcceptOnlyFromAmong([.. Voice.SamplerNames]);
        var precisions = new Option<string>("--precision") { Description = "fp32, bf16 or both", DefaultValueFactory = _ => "both" }
            .AcceptOnlyFromAmong("fp32", "bf16", "both");
        var start = new Option<string?>("--start") { Description = "griffin-lim or noise; default: the voice's, else noise" }
            .AcceptOnlyFromAmong("griffin-lim", "noise");
        var consistency = new Option<string?>("--consistency")
        {
            Description = $"Consistency steps: none, project[:K[:ITERATIONS]] or substitute[:K]; default: the voice's, else {ConsistencySteps.Default}",
        };
        var postFilter = new Option<int?>("--post-filter")
        {
            Description = $"Post-filter passes; default: the voice's, else {SynthesisOptions.DefaultPostFilterPasses}",
        };
        var postFilterMomentum = VocoderCommands.PostFilterMomentumOption();
        var piece = new Option<int?>("--piece-frames")
        {
            Description = $"Frames per CPU piece; default: the voice's network kind's, else {new SynthesisOptions().CpuPieceFrames}",
        };
        var iterations = new Option<int?>("--start-iterations")
        {
            Description = $"Iterations of the Griffin-Lim start (--start griffin-lim); default: the voice's, else {SynthesisOptions.DefaultStartIterations}",
        };
        var startNoise = new Option<double?>("--start-noise")
        {
            Description = $"Largest noise std the sampler starts at from Griffin-Lim; default: the voice's, else {SynthesisOptions.DefaultStartNoise}",
        };
        var startPhase = VocoderCommands.StartPhaseOption(null);
        var profile = new Option<bool>("--profile") { Description = "Also time each layer of one network evaluation (WaveGrad voices)" };
        var device = Cli.Device();
        var cmd = new Command("bench", "Time renders (first chunk, steady real-time factor) against the machine's matmul peak")
        {
            voice, seconds, steps, sampler, precisions, start, consistency, postFilter, postFilterMomentum, piece, iterations, startNoise, startPhase,
            profile, device,
        };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var dev = Devices.Resolve(pr.GetValue(device)!);
            var kinds = pr.GetValue(precisions) == "both" ? ["fp32", "bf16"] : new[] { pr.GetValue(precisions)! };
            var peaks = new Dictionary<ScalarType, double>();
            double Peak(ScalarType t) => peaks.TryGetValue(t, out double p) ? p : peaks[t] = MatmulPeak(t, dev);
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {torch.get_num_threads()} torch threads; matmul peak " +
                string.Join(", ", kinds.Select(k => $"{k} {Peak(Devices.InferenceType(k, dev)):F0} GFLOP/s")) +
                $"; --precision auto here: {(Devices.InferenceType("auto", dev) == ScalarType.BFloat16 ? "bf16" : "fp32")}");
            bool header = false;
            foreach (var kind in kinds)
            {
                using var v = VocoderCommands.LoadVocoder(pr.GetValue(voice)!, pr.GetValue(device)!, precision: kind);
                // What the voice renders with, but for the flags given (checked by the Vocoder).
                var how = VocoderCommands.Overlay(v.Voice.RenderDefaults(), pr.GetValue(start), pr.GetValue(iterations), pr.GetValue(startNoise),
                    pr.GetValue(startPhase), pr.GetValue(consistency), pr.GetValue(postFilter), pr.GetValue(postFilterMomentum));
                if (pr.GetValue(piece) is int pieceFrames) how = how with { CpuPieceFrames = pieceFrames };
                var architecture = VocoderArchitectures.Get(v.Voice.Architecture, v.Voice.Bundle.ManifestPath);
                var computes = architecture.ComputeType(Devices.InferenceType(kind, dev));
                double peak = Peak(computes);
                double flopsPerSecondPerStep = 2 * architecture.MultiplyAddsPerSample(v.Voice) * v.SampleRate;
                string samplerName = pr.GetValue(sampler) ?? v.Voice.DefaultSampler.Name;
                string computesName = computes == ScalarType.BFloat16 ? "bf16" : "fp32";
                if (!header)
                {
                    Console.WriteLine($"voice {v.Voice.Name} ({v.Voice.Architecture}), sampler {samplerName} from {VocoderCommands.StartName(how.Start)}, " +
                        $"consistency {how.Consistency}, {how.PostFilterPasses} post-filter passes (momentum {how.PostFilterMomentum})");
                    Console.WriteLine($"{"precision",-9} {"evals",5} {"first chunk s",13} {"5 s best of 3",12} {"steady RTF",10} {"GFLOP/s",8} {"of peak",8}");
                    header = true;
                }
                double total = pr.GetValue(seconds);
                var shortMel = Mel(v, 5);
                var longMel = Mel(v, 5 + total);
                Render(v, Mel(v, 1), how with { Sampler = v.Voice.DefaultSampler });   // warm-up: first-call costs are start-up
                var timed = pr.GetValue(steps) is string list
                    ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(spec => v.Voice.Sampler(samplerName, spec))
                    : [pr.GetValue(sampler) is null ? v.Voice.DefaultSampler : v.Voice.Sampler(samplerName)];
                foreach (var timedSampler in timed)
                {
                    var o = how with { Sampler = timedSampler };
                    var sw = Stopwatch.StartNew();
                    _ = v.SynthesizeStreaming(shortMel, o).First();
                    double first = sw.Elapsed.TotalSeconds;
                    // Best of 3 of each render, interleaved, as bench-pytorch.py times PyTorch: a VM's speed drifts within seconds.
                    double t5Best = double.MaxValue, tLongBest = double.MaxValue;
                    for (int i = 0; i < 3; i++)
                    {
                        t5Best = Math.Min(t5Best, Render(v, shortMel, o));
                        tLongBest = Math.Min(tLongBest, Render(v, longMel, o));
                    }
                    double rtf = (tLongBest - t5Best) / total;
                    int evaluations = v.Model.Evaluations(o);
                    double gflops = flopsPerSecondPerStep * evaluations / rtf / 1e9;
                    Console.WriteLine($"{computesName,-9} {evaluations,5} {first,13:F2} {t5Best,12:F2} {rtf,10:F3} {gflops,8:F0} {gflops / peak,8:P0}");
                }
                var sampled = how with { Sampler = pr.GetValue(sampler) is null ? v.Voice.DefaultSampler : v.Voice.Sampler(samplerName) };
                Breakdown(v, longMel, total + 5, computesName, sampled);
                // The profile runs on the CPU: compare it with the CPU's peak.
                if (pr.GetValue(profile))
                    Profile(v, longMel.cpu(), kind, how, dev.type == DeviceType.CPU ? peak : MatmulPeak(Devices.InferenceType(kind, CPU), CPU));
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>Seconds per second of audio of each part of a render with <paramref name="o"/>'s sampler, timed apart: the network on one CPU
    /// piece (per evaluation), the consistency steps on that piece, the Griffin-Lim start, the post-filter.</summary>
    static void Breakdown(Vocoder.Vocoder v, Tensor mel, double seconds, string name, SynthesisOptions o)
    {
        int piece = o.CpuPieceFrames, context = Math.Max(o.ContextFrames, MelPostFilter.ReachFrames(v.Voice.Mel, o.PostFilterPasses));
        var m = mel[.., ..(piece + 2 * context)].unsqueeze(0);
        double pieceSeconds = piece * v.Hop / (double)v.SampleRate;
        double Time(SynthesisOptions how)
        {
            var request = new RenderRequest(how with { Start = SamplerStart.Noise }, 0, null, default);
            v.Model.Render(m, request);
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 3; i++) v.Model.Render(m, request);
            return sw.Elapsed.TotalSeconds / 3 / pieceSeconds;   // per second of a piece's own audio
        }
        int evaluations = v.Model.Evaluations(o with { Start = SamplerStart.Noise });   // what Time runs
        double network = Time(o with { Consistency = ConsistencySteps.None });
        double consistency = o.Consistency.Mode == ConsistencyMode.None ? 0 : Time(o) - network;
        var sw = Stopwatch.StartNew();
        var gl = new GriffinLimStream(mel, v.Voice.Mel, o.StartIterations, start: o.StartPhase);
        for (long at = 0; at < gl.Length; at += 1 << 16) gl.Read(at, Math.Min(gl.Length, at + (1 << 16)));
        double glTime = sw.Elapsed.TotalSeconds / seconds;
        var audio = new float[(int)(mel.shape[1] * v.Hop)];
        sw.Restart();
        MelPostFilter.Apply(audio, mel, v.Voice.Mel, o.PostFilterPasses, o.PostFilterMomentum);
        double pf = sw.Elapsed.TotalSeconds / seconds;
        Console.WriteLine($"  {name}, s per s of audio: network {network / evaluations:F3} per evaluation ({piece}-frame pieces with {context} frames " +
            $"of context), consistency steps {consistency:F3}, Griffin-Lim start {glTime:F3}, post-filter {pf:F3}");
    }

    /// <summary>One network evaluation on one CPU piece (with its context) as the CPU runs it (<see cref="WaveGradInference"/>),
    /// stage by stage: time, share, and the GFLOP/s of the multiply-adds each stage computes.</summary>
    static void Profile(Vocoder.Vocoder v, Tensor mel, string kind, SynthesisOptions o, double peak)
    {
        int frames = o.CpuPieceFrames + 2 * Math.Max(o.ContextFrames, MelPostFilter.ReachFrames(v.Voice.Mel, o.PostFilterPasses));
        if (v.Voice.Architecture != VocoderArchitectures.WaveGrad)
        {
            Console.WriteLine($"  {kind} profile: skipped (only WaveGrad voices have a stage-by-stage profile)");
            return;
        }
        using var net = WaveGradNet.Load(v.Voice);
        if (!WaveGradInference.Supports(net.Config))
        {
            Console.WriteLine($"  {kind} profile: skipped ({net.Config.Interpolation} interpolation runs as WaveGradNet, which has no profile)");
            return;
        }
        using var engine = new WaveGradInference(net, Devices.InferenceType(kind, CPU));
        using var scope = NewDisposeScope();
        var m = mel[.., ..frames].unsqueeze(0);
        var audio = randn([1, frames * (long)v.Hop]);
        var stages = engine.Profile(audio, m, full([1], 0.5f), repeats: 5);
        double total = stages.Sum(s => s.Seconds), computed = stages.Sum(s => s.Macs), written = net.MacsPerSample() * audio.shape[1];
        Console.WriteLine($"  {kind} profile, one evaluation of {frames} frames: {total * 1e3:F1} ms; {computed / 1e9:F2} G multiply-adds computed, " +
            $"{written / 1e9:F2} G as the network is written (the polyphase UBlock convs skip the rest)");
        Console.WriteLine($"    {"stage",-12} {"ms",7} {"share",6} {"GFLOP/s",8} {"of peak",8}");
        foreach (var (stage, secs, macs) in stages)
        {
            double gflops = 2 * macs / secs / 1e9;
            Console.WriteLine($"    {stage,-12} {secs * 1e3,7:F1} {secs / total,6:P0} {gflops,8:F0} {gflops / peak,8:P0}");
        }
    }

    static double Render(Vocoder.Vocoder v, Tensor mel, SynthesisOptions o)
    {
        var sw = Stopwatch.StartNew();
        foreach (var _ in v.SynthesizePieces(mel, o)) { }
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>The mel of a voiced, amplitude-modulated harmonic sweep (render time does not depend on what is said).</summary>
    static Tensor Mel(Vocoder.Vocoder v, double seconds)
    {
        int n = (int)(seconds * v.SampleRate);
        var x = new float[n];
        double phase = 0;
        for (int i = 0; i < n; i++)
        {
            double t = i / (double)v.SampleRate;
            phase += 2 * Math.PI * (120 + 60 * Math.Sin(2 * Math.PI * 0.3 * t)) / v.SampleRate;
            double env = 0.5 + 0.5 * Math.Sin(2 * Math.PI * 3 * t);
            x[i] = (float)(env * (0.3 * Math.Sin(phase) + 0.15 * Math.Sin(2 * phase) + 0.08 * Math.Sin(3 * phase)));
        }
        using var spec = new MelSpectrogram(v.Voice.Mel);
        return spec.Compute(tensor(x));
    }

    /// <summary>GFLOP/s of a 2048² matrix product in <paramref name="type"/>, best of ten (this VM's timings drift).</summary>
    static double MatmulPeak(ScalarType type, Device device)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var a = randn(2048, 2048, device: device).to_type(type);
        var b = randn(2048, 2048, device: device).to_type(type);
        matmul(a, b);
        double best = double.PositiveInfinity;
        for (int k = 0; k < 10; k++)
        {
            var sw = Stopwatch.StartNew();
            var c = matmul(a, b);
            if (device.type == TorchSharp.DeviceType.CUDA) torch.cuda.synchronize();
            else c.sum().to_type(ScalarType.Float32).item<float>();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * 2048 * 2048 * 2048 / best / 1e9;
    }
}
