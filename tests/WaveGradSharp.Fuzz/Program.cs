using WaveGradSharp.Fuzz;

// usage: dotnet run -c Release --project tests/WaveGradSharp.Fuzz -- [--target all|wav|npy|safetensors|voice|image|pytorch]
//        [--iterations 100000] [--seed 1] [--timeout-seconds 20] [--findings fuzz-findings]
string target = "all", findings = "fuzz-findings";
int iterations = 100_000, seed = 1, timeout = 20;
for (int i = 0; i + 1 < args.Length; i += 2)
    switch (args[i])
    {
        case "--target": target = args[i + 1]; break;
        case "--iterations": iterations = int.Parse(args[i + 1]); break;
        case "--seed": seed = int.Parse(args[i + 1]); break;
        case "--timeout-seconds": timeout = int.Parse(args[i + 1]); break;
        case "--findings": findings = args[i + 1]; break;
        default: Console.Error.WriteLine($"fuzz: unknown option {args[i]}"); return 2;
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
