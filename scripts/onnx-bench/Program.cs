// Times a WaveGrad network exported by scripts/export-onnx.py in ONNX Runtime on the CPU: checks its output against
// PyTorch's, then runs STEPS evaluations over the exported input (the whole input in one pass, as bench-pytorch.py does),
// best of 3 after a warm-up. usage: onnx-bench DIR [STEPS] [THREADS]
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

string dir = args[0];
int steps = args.Length > 1 ? int.Parse(args[1]) : 6, threads = args.Length > 2 ? int.Parse(args[2]) : Environment.ProcessorCount;
var (audio, audioShape) = Npy(Path.Combine(dir, "audio.npy"));
var (mel, melShape) = Npy(Path.Combine(dir, "mel.npy"));
var (eps, _) = Npy(Path.Combine(dir, "eps.npy"));
using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
using var session = new InferenceSession(Path.Combine(dir, "net.onnx"), options);
var melInput = NamedOnnxValue.CreateFromTensor("mel", new DenseTensor<float>(mel, melShape));

float[] Evaluate(float[] x, float level)
{
    var inputs = new[] { NamedOnnxValue.CreateFromTensor("audio", new DenseTensor<float>(x, audioShape)), melInput,
        NamedOnnxValue.CreateFromTensor("level", new DenseTensor<float>(new[] { level }, [1])) };
    using var results = session.Run(inputs);
    return results.First().AsEnumerable<float>().ToArray();
}

var y = Evaluate(audio, 0.5f);
double diff = y.Zip(eps, (a, b) => Math.Abs(a - b)).Max(), scale = eps.Max(Math.Abs);
Console.WriteLine($"ONNX Runtime {OrtEnv.Instance().GetVersionString()}, {threads} threads: output against PyTorch's: max |diff| {diff:E1} of {scale:F3}");
if (!(diff <= 1e-3 * scale)) { Console.Error.WriteLine("error: ONNX Runtime's output differs from PyTorch's"); return 1; }
double best = double.MaxValue;
for (int round = 0; round < 4; round++)
{
    var x = (float[])audio.Clone();
    var clock = Stopwatch.StartNew();
    for (int n = steps - 1; n >= 0; n--)
    {
        var e = Evaluate(x, 0.1f + 0.8f * n / steps);
        for (int i = 0; i < x.Length; i++) x[i] = Math.Clamp(x[i] - 0.1f * e[i], -1f, 1f);
    }
    if (round > 0) best = Math.Min(best, clock.Elapsed.TotalSeconds);   // round 0 warms up
}
double seconds = audio.Length / 22050.0;
Console.WriteLine($"{steps} evaluations over {seconds:F2} s of audio ({melShape[2]} frames) in {best:F3} s, best of 3: " +
    $"{best / steps * 1e3:F1} ms per evaluation, {best / steps / seconds:F3} s per second of audio");
return 0;

// The project's own .npy reader, with the int dimensions ONNX Runtime's tensors take.
static (float[] Data, int[] Shape) Npy(string path)
{
    var (data, shape) = WaveGradSharp.Core.Npy.Read(path);
    return (data, Array.ConvertAll(shape, d => (int)d));
}
