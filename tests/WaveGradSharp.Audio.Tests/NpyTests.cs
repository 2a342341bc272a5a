using System.Buffers.Binary;
using System.Text;
using static TorchSharp.torch;
using static WaveGradSharp.Audio.Tests.TestData;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio.Tests;

public class NpyTests
{
    /// <summary>An .npy image as numpy would write it, with any dtype/order/version.</summary>
    static byte[] Raw(string descr, bool fortran, long[] shape, byte[] data, int version = 1)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        return RawDict($"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': ({dims}), }}", data, version);
    }

    /// <summary>An .npy image with the header dict given as text.</summary>
    static byte[] RawDict(string dict, byte[] data, int version = 1)
    {
        int pre = version == 1 ? 10 : 12;
        int pad = (64 - (pre + dict.Length + 1) % 64) % 64;
        var h = Encoding.Latin1.GetBytes(dict + new string(' ', pad) + "\n");
        var b = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)version, 0 };
        if (version == 1) { b.Add((byte)h.Length); b.Add((byte)(h.Length >> 8)); }
        else b.AddRange(BitConverter.GetBytes((uint)h.Length));
        b.AddRange(h); b.AddRange(data);
        return b.ToArray();
    }

    // The 2x3 matrix [[0,1,2],[3,4,5]] in each encoding.
    static readonly float[] M = [0, 1, 2, 3, 4, 5];
    static byte[] F4(float[] v)
    {
        var b = new byte[v.Length * 4];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), v[i]);
        return b;
    }
    static byte[] F8(float[] v)
    {
        var b = new byte[v.Length * 8];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(8 * i), v[i]);
        return b;
    }
    static byte[] F2(float[] v)
    {
        var b = new byte[v.Length * 2];
        for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(2 * i), (Half)v[i]);
        return b;
    }
    static readonly float[] MFortran = [0, 3, 1, 4, 2, 5]; // column-major storage of M

    public static TheoryData<string, bool, int> Layouts() => new()
    {
        { "<f4", false, 1 }, { "<f4", true, 1 }, { "<f8", false, 1 }, { "<f8", true, 2 }, { "<f2", false, 1 }, { "<f2", true, 3 },
    };

    [Theory, MemberData(nameof(Layouts))]
    public void Reads_float16_32_64_in_c_and_fortran_order(string descr, bool fortran, int version)
    {
        var src = fortran ? MFortran : M;
        var data = descr == "<f4" ? F4(src) : descr == "<f8" ? F8(src) : F2(src);
        string dir = TempDir(), path = Path.Combine(dir, "m.npy");
        File.WriteAllBytes(path, Raw(descr, fortran, [2, 3], data, version));
        var (d, s) = Npy.Read(path);
        Assert.Equal(new long[] { 2, 3 }, s);
        Assert.Equal(M, d);
    }

    [Fact]
    public void Fortran_order_3d_batches_are_transposed_correctly()
    {
        // shape (2, 3, 4): value = 100a + 10b + c; Fortran order stores a fastest.
        var f = new List<float>();
        for (int c = 0; c < 4; c++) for (int b = 0; b < 3; b++) for (int a = 0; a < 2; a++) f.Add(100 * a + 10 * b + c);
        string path = Path.Combine(TempDir(), "b.npy");
        File.WriteAllBytes(path, Raw("<f4", true, [2, 3, 4], F4(f.ToArray())));
        var (d, s) = Npy.Read(path);
        Assert.Equal(new long[] { 2, 3, 4 }, s);
        for (int a = 0; a < 2; a++) for (int b = 0; b < 3; b++) for (int c = 0; c < 4; c++)
            Assert.Equal(100 * a + 10 * b + c, d[a * 12 + b * 4 + c]);
    }

    [Fact]
    public void Writes_what_numpy_writes_and_reads_it_back()
    {
        string path = Path.Combine(TempDir(), "w.npy");
        Npy.Write(path, M, [2, 3]);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(Raw("<f4", false, [2, 3], F4(M)), bytes); // byte-identical to numpy's v1.0 layout (64-byte aligned header)
        Assert.Equal(0, (10 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8))) % 64);
        using var t = Npy.ReadTensor(path);
        Assert.Equal(new long[] { 2, 3 }, t.shape);
        Assert.Equal(M, t.data<float>().ToArray());
        Npy.Write(path, [1f, 2f], [2]);
        Assert.Equal(new long[] { 2 }, Npy.Read(path).Shape);
    }

    [Fact]
    public void Mel_files_load_frames_first_and_batched_and_the_n_mels_check_names_both_numbers()
    {
        string dir = TempDir();
        Npy.Write(Path.Combine(dir, "ft.npy"), M, [3, 2]); // [frames=3, n_mels=2]
        using var m = MelFile.Load(Path.Combine(dir, "ft.npy"), framesFirst: true);
        Assert.Equal(new long[] { 2, 3 }, m.shape);
        Assert.Equal(new float[] { 0, 2, 4, 1, 3, 5 }, m.data<float>().ToArray());
        MelFile.CheckNMels(m, 2, "x");
        var e = Assert.Throws<WaveGradException>(() => MelFile.CheckNMels(m, 80, "voice lj"));
        Assert.Equal("voice lj: the mel has 2 mel bands but 80 are expected (shape [2, 3])", e.Message);
        using var wrongWay = zeros(50, 80);
        Assert.Contains("read it with FramesFirst", Assert.Throws<WaveGradException>(() => MelFile.CheckNMels(wrongWay, 80, "f.npy")).Message);
        Npy.Write(Path.Combine(dir, "b.npy"), new float[2 * 80 * 7], [2, 80, 7]);
        using var b = MelFile.Load(Path.Combine(dir, "b.npy"));
        MelFile.CheckNMels(b, 80, "b");
        Npy.Write(Path.Combine(dir, "v.npy"), M, [6]);
        Assert.Contains("expected a 2-D [n_mels, frames] or 3-D", Assert.Throws<WaveGradException>(() => MelFile.Load(Path.Combine(dir, "v.npy"))).Message);
        Npy.Write(Path.Combine(dir, "n.npy"), [0, float.NaN], [1, 2]);
        Assert.Contains("is NaN", Assert.Throws<WaveGradException>(() => MelFile.Load(Path.Combine(dir, "n.npy"))).Message);
    }

    public static TheoryData<string, string> BadNpy() => new()
    {
        { "magic", "not a .npy file" },
        { "int", "unsupported .npy dtype '<i4'" },
        { "bigendian", "unsupported .npy dtype '>f4'" },
        { "truncated", "truncated .npy data" },
        { "absurd", "truncated .npy data: shape (100000, 100000, 100000)" },
        { "version", "unsupported .npy format version 9" },
        { "shape-twice", "corrupt .npy header: the key 'shape' appears 2 times" },
        { "descr-twice", "corrupt .npy header: the key 'descr' appears 2 times" },
    };

    [Theory, MemberData(nameof(BadNpy))]
    public void Bad_npy_files_are_named_with_their_problem(string kind, string problem)
    {
        byte[] b = kind switch
        {
            "magic" => "RIFF....WAVEfmt "u8.ToArray(),
            "int" => Raw("<i4", false, [2, 3], F4(M)),
            "bigendian" => Raw(">f4", false, [2, 3], F4(M)),
            "truncated" => Raw("<f4", false, [2, 3], F4(M))[..^4],
            "absurd" => Raw("<f4", false, [100000, 100000, 100000], F4(M)),
            // numpy takes the last of two equal keys (a (6,) vector here), a regex the first: the two would read two arrays.
            "shape-twice" => RawDict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (6,), }", F4(M)),
            "descr-twice" => RawDict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'descr' : '<f2', }", F4(M)),
            _ => Raw("<f4", false, [2, 3], F4(M), version: 9),
        };
        string path = Path.Combine(TempDir(), "bad.npy");
        File.WriteAllBytes(path, b);
        var e = Assert.Throws<WaveGradException>(() => Npy.Read(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(problem, e.Message);
    }
}
