using System.Globalization;
using ScottPlot;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>Labelled spectrogram pictures (headless; ScottPlot on SkiaSharp).</summary>
public static class MelPlot
{
    /// <summary>Renders a log-mel [n_mels, frames] as a PNG: time in seconds across, frequency (Hz at the band centres) up,
    /// a colour bar in the config's log units. Written atomically.</summary>
    public static void SavePng(string path, Tensor logMel, MelConfig cfg, string? title = null, int width = 1000, int height = 500)
    {
        using var scope = NewDisposeScope();
        var m = (logMel.dim() == 3 ? logMel[0] : logMel).to(CPU).to_type(float32).contiguous();
        MelFile.CheckNMels(m, cfg.NMels, path);
        int nM = (int)m.shape[0], nT = (int)m.shape[1];
        var v = m.data<float>().ToArray();
        var z = new double[nM, nT];
        for (int i = 0; i < nM; i++)
            for (int j = 0; j < nT; j++)
                z[nM - 1 - i, j] = v[i * nT + j]; // row 0 is drawn at the top: put the highest band there

        var plt = new Plot();
        var hm = plt.Add.Heatmap(z);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        double seconds = (double)nT * cfg.Hop / cfg.SampleRate;
        hm.Extent = new CoordinateRect(0, seconds, -0.5, nM - 0.5);
        var bar = plt.Add.ColorBar(hm);
        bar.Label = cfg.Log == LogCompression.Ln ? "ln(mel magnitude)" : "lmnt scale (0–1)";

        var centres = cfg.BandCentersHz();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (double hz in NiceFrequencies(cfg))
        {
            double pos = BinPosition(centres, hz);
            string label = hz >= 1000 ? (hz / 1000).ToString("0.#", CultureInfo.InvariantCulture) + " k" : hz.ToString("0", CultureInfo.InvariantCulture);
            if (pos >= 0 && pos <= nM - 1) ticks.AddMajor(pos, label);
        }
        plt.Axes.Left.TickGenerator = ticks;
        plt.Axes.Left.Label.Text = "frequency (Hz, mel-spaced)";
        plt.Axes.Bottom.Label.Text = "time (s)";
        plt.Axes.SetLimits(0, seconds, -0.5, nM - 0.5);
        plt.Title(title ?? $"log-mel, preset {cfg.Name}: {nM} bands × {nT} frames, hop {cfg.Hop} at {cfg.SampleRate} Hz");
        var bytes = plt.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    static IEnumerable<double> NiceFrequencies(MelConfig cfg)
    {
        double[] all = [100, 200, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 16000, 20000];
        return all.Where(f => f >= cfg.FMin && f <= cfg.FMax);
    }

    /// <summary>Fractional band index whose centre is at <paramref name="hz"/> (linear between neighbouring centres).</summary>
    static double BinPosition(double[] centres, double hz)
    {
        if (hz < centres[0] || hz > centres[^1]) return -1;
        for (int i = 1; i < centres.Length; i++)
            if (hz <= centres[i]) return i - 1 + (hz - centres[i - 1]) / (centres[i] - centres[i - 1]);
        return centres.Length - 1;
    }
}
