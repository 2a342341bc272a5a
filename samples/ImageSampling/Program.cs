// Draws digits from the shipped class-conditional MNIST model (samples/models/mnist-ddpm) with the library API:
// one row per digit 0–9, DDIM 50 steps, classifier-free guidance weight 3, written as a PNG grid.
//
//   dotnet run --project samples/ImageSampling -- [-o digits.png] [--per-class 8]
using WaveGradSharp.Imaging;
using static TorchSharp.torch;

string output = "digits.png";
int perClass = 8;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] is "-o" && i + 1 < args.Length) output = args[++i];
    else if (args[i] is "--per-class" && i + 1 < args.Length) perClass = int.Parse(args[++i]);
    else { Console.Error.WriteLine($"error: unknown argument '{args[i]}'"); return 2; }
}

var model = ImageModel.Load("mnist-ddpm", "unet");   // found under samples/models
using var net = model.CreateUNet();
var rows = new List<Tensor>();
for (int digit = 0; digit < 10; digit++)
{
    var request = new ImageSampleRequest { Sampler = "ddim", Steps = 50, Class = digit, Guidance = 3, Count = perClass, Seed = 100 + digit };
    rows.Add(ImageSampling.Sample(model, net, request));   // [perClass, 1, 28, 28] in [−1, 1]
}
ImageFiles.WriteGrid(output, cat(rows, 0), columns: perClass);
Console.WriteLine($"wrote {output}: digits 0–9, {perClass} of each");
return 0;
