using System.CommandLine;
using System.Globalization;
using WaveGradSharp.Core;
using WaveGradSharp.Diffusion;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad schedule show|demo</c>.</summary>
static class ScheduleCommands
{
    public static Command Create()
    {
        var cmd = new Command("schedule", "Inspect noise schedules and prove the samplers");
        cmd.Subcommands.Add(Show());
        cmd.Subcommands.Add(Demo());
        cmd.Subcommands.Add(VocoderCommands.ScheduleSearchCommand());
        return cmd;
    }

    static string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    static Command Show()
    {
        var name = new Argument<string>("schedule") { Description = $"A named schedule ({string.Join(", ", NoiseSchedule.Names)}) or a JSON file" };
        var output = Cli.Output("Also write the schedule as JSON to this file", required: false);
        var cmd = new Command("show", "Print a schedule's steps, β, ᾱ and √ᾱ at its ends, and its terminal SNR") { name, output };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var s = NoiseSchedule.Resolve(pr.GetValue(name)!);
            Console.WriteLine($"schedule {s.Name}: {s.Steps} steps");
            Console.WriteLine($"{"t",6} {"β",12} {"ᾱ",12} {"√ᾱ",12} {"√(1−ᾱ)",12}");
            var rows = s.Steps <= 8 ? Enumerable.Range(0, s.Steps) : new[] { 0, 1, 2, s.Steps - 3, s.Steps - 2, s.Steps - 1 };
            int prev = -1;
            foreach (int t in rows)
            {
                if (prev >= 0 && t != prev + 1) Console.WriteLine($"{"…",6}");
                Console.WriteLine($"{t,6} {G(s.Betas[t]),12} {G(s.AlphasCumprod[t]),12} {G(s.SqrtAlphasCumprod[t]),12} {G(s.SqrtOneMinusAlphasCumprod[t]),12}");
                prev = t;
            }
            double snr = s.TerminalSnr;
            Console.WriteLine($"terminal SNR ᾱ_T/(1−ᾱ_T) = {G(snr)} ({G(10 * Math.Log10(snr))} dB)");
            if (pr.GetValue(output) is string o) { s.Save(o); Console.WriteLine($"wrote {o}"); }
            return 0;
        }, needsTorch: false));
        return cmd;
    }

    static Command Demo()
    {
        var n = new Option<int>("--samples", "-n") { Description = "Samples per sampler", DefaultValueFactory = _ => 4000 };
        var seed = Cli.Seed();
        var start = new Option<double?>("--start-noise")
        {
            Description = "Start each sample from an exact draw of the mixture noised to this noise std (a start from an estimate), not from noise",
        };
        var cmd = new Command("demo",
            "Sample a 1-D two-component Gaussian mixture with its exact (closed-form) denoiser through every sampler and compare the moments with the " +
                "truth") { n, seed, start };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            var mix = SamplerCheck.DemoMixture();
            var tol = new SamplerCheck.Tolerance();
            Console.WriteLine($"data: {string.Join(" + ", mix.Weights.Select((w, k) => $"{G(w)}·N({G(mix.Means[k])}, {G(mix.Stds[k])}²)"))}");
            if (pr.GetValue(start) is double sn && !(sn > 0)) throw new WaveGradException($"--start-noise {sn}: must be positive");
            if (pr.GetValue(start) is double s0) Console.WriteLine($"each sample starts from an exact draw noised to the first level at noise std ≤ {s0}");
            Console.WriteLine($"{pr.GetValue(n)} samples per sampler, seed {pr.GetValue(seed)}; tolerance |Δmean| ≤ {tol.Mean}, |Δvar| ≤ " +
                $"{tol.Variance}, |Δw| ≤ {tol.Weight}");
            Console.WriteLine();
            Console.WriteLine($"{"sampler",-20} {"evals",6} {"mean",8} {"var",8} {"w1",7} {"w2",7} {"time",7}  ok");
            Console.WriteLine($"{"truth",-20} {"",6} {mix.Mean,8:F4} {mix.Variance,8:F4} {mix.Weights[0],7:F4} {mix.Weights[1],7:F4} {"",7}");
            int failed = 0;
            foreach (var (label, sampler) in SamplerCheck.DemoSamplers())
            {
                var m = SamplerCheck.Measure(label, sampler, mix, pr.GetValue(n), pr.GetValue(seed), pr.GetValue(start));
                bool ok = m.Within(mix, tol);
                if (!ok) failed++;
                Console.WriteLine($"{label,-20} {m.Evaluations,6} {m.Mean,8:F4} {m.Variance,8:F4} {m.Weights[0],7:F4} {m.Weights[1],7:F4} " +
                    $"{m.Seconds,6:F2}s  {(ok ? "yes" : "NO")}");
            }
            Console.WriteLine();
            Console.WriteLine(failed == 0 ? "every sampler reproduces the mixture within tolerance" : $"{failed} sampler(s) outside tolerance");
            return failed == 0 ? 0 : 1;
        }));
        return cmd;
    }
}
