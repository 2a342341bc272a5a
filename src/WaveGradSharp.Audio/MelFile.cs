using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>Mel spectrograms on disk (.npy) and the shape checks the vocoder relies on.</summary>
public static class MelFile
{
    /// <summary>Loads a mel from <paramref name="path"/> as float32 [n_mels, frames] or [B, n_mels, frames] on the CPU.
    /// The file may hold float16/32/64 in C or Fortran order; with <paramref name="framesFirst"/> it is read as
    /// [frames, n_mels] / [B, frames, n_mels] and transposed.</summary>
    public static Tensor Load(string path, bool framesFirst = false)
    {
        using var fs = InputFile.Open(path, ".npy file");
        return Load(fs, path, framesFirst);
    }

    /// <summary>As <see cref="Load(string, bool)"/>, for an .npy image in <paramref name="stream"/> (an upload);
    /// <paramref name="name"/> names it in errors.</summary>
    public static Tensor Load(Stream stream, string name, bool framesFirst = false)
    {
        var (data, shape) = Npy.Read(stream, name);
        if (shape.Length is not (2 or 3))
            throw new WaveGradException($"{name}: expected a 2-D [n_mels, frames] or 3-D [batch, n_mels, frames] mel, got shape ({string.Join(", ", shape)})");
        if (shape[^1] == 0 || shape[^2] == 0 || (shape.Length == 3 && shape[0] == 0))
            throw new WaveGradException($"{name}: mel of shape ({string.Join(", ", shape)}) is empty");
        for (int i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i])) throw new WaveGradException($"{name}: mel value {i} is {(float.IsNaN(data[i]) ? "NaN" : "infinite")}");
        using var scope = NewDisposeScope();
        var t = tensor(data, shape);
        if (framesFirst) t = t.transpose(-1, -2).contiguous();
        return t.MoveToOuterDisposeScope();
    }

    /// <summary>Throws a <see cref="WaveGradException"/> unless <paramref name="mel"/> is [n_mels, frames] or
    /// [B, n_mels, frames] with n_mels = <paramref name="expectedNMels"/>; the message names <paramref name="source"/>
    /// and both numbers.</summary>
    public static void CheckNMels(Tensor mel, int expectedNMels, string source)
    {
        if (mel.dim() is not (2 or 3))
            throw new WaveGradException($"{source}: expected a mel of shape [n_mels, frames] or [batch, n_mels, frames], got [{string.Join(", ", mel.shape)}]");
        long got = mel.shape[^2];
        if (got == expectedNMels) return;
        string hint = mel.shape[^1] == expectedNMels ? $"; its last axis has {expectedNMels}, so it may be stored [frames, n_mels]: read it with " +
            "FramesFirst" : "";
        throw WaveGradException.About($"{source}: the mel has {got} mel bands but {expectedNMels} are expected (shape " +
            $"[{string.Join(", ", mel.shape)}]){hint}", "FramesFirst");
    }

    /// <summary>Writes <paramref name="mel"/> ([n_mels, frames] or batched) as float32 .npy, transposed to frames-first on request.</summary>
    public static void Save(string path, Tensor mel, bool framesFirst = false)
    {
        using var scope = NewDisposeScope();
        Npy.Write(path, framesFirst ? mel.transpose(-1, -2) : mel);
    }
}
