using WaveGradSharp.Fuzz;

const string Usage = """
    usage: dotnet run -c Release --project tests/WaveGradSharp.Fuzz -- [options]
    Mutates seed files and hands each input to one parser; a crash, a hang or an oversized allocation is a finding.
      --target NAME           all (default), or one of: wav, npy, safetensors, voice, image, pytorch
      --iterations N          inputs per target (default 100000)
      --seed N                random seed (default 1)
      --timeout-seconds N     an input running longer is a hang (default 20)
      --findings DIR          where findings go (default fuzz-findings)
      --help                  print this and exit
    Exit code: 0 without findings, 1 with findings, 2 for a bad command line.
    """;
string target = "all", findings = "fuzz-findings";
int iterations = 100_000, seed = 1, timeout = 20;
for (int i = 0; i < args.Length; i += 2)
{
    if (args[i] is "--help" or "-h") { Console.WriteLine(Usage); return 0; }
    string? value = i + 1 < args.Length ? args[i + 1] : null;
    int number = 0;
    bool ok = value is not null && args[i] switch
    {
        "--target" => (target = value) is "all" || Fuzzer.Targets.Contains(value),
        "--findings" => (findings = value).Length > 0,
        "--iterations" or "--seed" or "--timeout-seconds" => int.TryParse(value, out number) && number >= (args[i] == "--seed" ? 0 : 1),
        _ => false,
    };
    if (!ok)
    {
        string what = args[i] is "--target" or "--findings" or "--iterations" or "--seed" or "--timeout-seconds"
            ? value is null ? $"{args[i]} needs a value" : $"{args[i]} {value}: not a valid value"
            : $"unknown option {args[i]}";
        Console.Error.WriteLine($"fuzz: {WaveGradSharp.Core.Text.Escape(what, 200)} (see --help)");
        return 2;
    }
    if (args[i] == "--iterations") iterations = number;
    else if (args[i] == "--seed") seed = number;
    else if (args[i] == "--timeout-seconds") timeout = number;
}
var work = Directory.CreateTempSubdirectory("wg-fuzz-");
var fuzzer = new Fuzzer(work.FullName, seed, TimeSpan.FromSeconds(timeout));
int total = 0;
Console.WriteLine($"{"target",-12} {"inputs",8} {"accepted",9} {"rejected",9} {"crashed",8} {"hung",5} {"max ms",8} {"max MB",7}  minutes");
foreach (var t in target == "all" ? Fuzzer.Targets : [target])
{
    var clock = System.Diagnostics.Stopwatch.StartNew();
    var r = fuzzer.Run(t, iterations, findings, line => Console.Error.WriteLine(line));
    Console.WriteLine($"{r.Target,-12} {r.Inputs,8} {r.Accepted,9} {r.Rejected,9} {r.Crashed,8} {r.Hung,5} {r.MaxMs,8:F0} {r.MaxAllocatedMb,7}  " +
        $"{clock.Elapsed.TotalMinutes:F1}");
    foreach (var f in r.Findings.Take(5)) Console.WriteLine("  " + f);
    total += r.Findings.Count;
}
try { work.Delete(true); } catch (IOException) { }
Console.WriteLine(total == 0 ? "no crash, hang or oversized allocation" : $"{total} finding(s), inputs in {findings}/");
return total == 0 ? 0 : 1;
