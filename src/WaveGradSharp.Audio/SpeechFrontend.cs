using System.Diagnostics;
using System.Text.RegularExpressions;
using WaveGradSharp.Core;

namespace WaveGradSharp.Audio;

/// <summary>
/// The text frontend of <c>wavegrad speak</c>: an installed text-to-speech program (festival, preferably with its
/// slt HTS voice, else espeak-ng) renders the utterance, whose mel the vocoder then re-renders.
/// </summary>
public static partial class SpeechFrontend
{
    /// <summary>The program that will be used: "festival", "espeak-ng", or null when neither is installed.</summary>
    public static string? Available() =>
        OnPath("festival") ? "festival" : OnPath("espeak-ng") ? "espeak-ng" : null;

    /// <summary>True when an executable of that name is in a folder on PATH.</summary>
    internal static bool OnPath(string exe) => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator).Any(d => d.Length > 0 && File.Exists(Path.Combine(d, exe)));

    /// <summary>Splits text into sentences (at . ! ? ; followed by space), dropping empty pieces.</summary>
    public static IReadOnlyList<string> Sentences(string text) =>
        SentenceEnd().Split(text.Replace('\n', ' ')).Select(s => s.Trim()).Where(s => s.Any(char.IsLetterOrDigit)).ToList();

    [GeneratedRegex(@"(?<=[.!?;])\s+")]
    private static partial Regex SentenceEnd();

    /// <summary>Renders one utterance with the frontend and returns its samples at <paramref name="sampleRate"/>.</summary>
    public static float[] Render(string text, int sampleRate)
    {
        var (samples, rate) = Render(text);
        return Wav.Resample(samples, rate, sampleRate);
    }

    /// <summary>Renders one utterance with the frontend: its samples at the speech program's own rate.</summary>
    public static (float[] Samples, int SampleRate) Render(string text) => Spawn(text).Collect();

    /// <summary>
    /// Starts the speech program on one utterance: the program is running when this returns, and the task gives its samples
    /// at the program's own rate. The process is created on the caller's thread on purpose: a process started while another
    /// thread is inside dlopen (libtorch's load takes 0.3 s) waits for that load to finish before it can run.
    /// </summary>
    public static Task<(float[] Samples, int SampleRate)> Start(string text)
    {
        var running = Spawn(text);
        return Task.Run(running.Collect);
    }

    /// <summary>The speech program at work on one utterance, in a temporary folder of its own.</summary>
    sealed record Running(Process Process, string Frontend, string Folder, string WavPath, string Utterance, int HeapCells)
    {
        /// <summary>Waits for the program and reads its WAV; the process and the folder are gone afterwards. festival, run out of
        /// its heap, runs once more with its default heap.</summary>
        public (float[] Samples, int SampleRate) Collect()
        {
            try
            {
                var err = Process.StandardError.ReadToEndAsync();
                Process.StandardOutput.ReadToEnd();
                Process.WaitForExit();
                if (Process.ExitCode != 0 && Frontend == "festival" && HeapCells < FestivalDefaultHeapCells && err.Result.Contains("ran out of storage"))
                    return Spawn(Utterance, FestivalDefaultHeapCells).Collect();
                if (Process.ExitCode != 0 || !File.Exists(WavPath))
                    throw new WaveGradException($"speak: {Frontend} failed (exit code {Process.ExitCode}): " +
                        $"{Text.Escape(err.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "")}");
                var samples = Wav.Read(WavPath, out int rate);
                return (samples, rate);
            }
            finally
            {
                Process.Dispose();
                DeleteFolder(Folder);
            }
        }
    }

    /// <summary>festival's own default heap, in Lisp cells.</summary>
    internal const int FestivalDefaultHeapCells = 10_000_000;

    /// <summary>
    /// The Lisp heap festival gets for one utterance, in cells: 0.5 M plus 1,500 per character, a digit counting 12 (a number
    /// reads as several words per digit), at most festival's default. festival builds its whole heap before it reads the
    /// script, so on a short sentence the default costs most of the run (on a 2-core VM 0.9 of 1.0 s, against 0.1 to 0.3 s
    /// for 0.1 to 1 M cells, with the same samples). A sentence of 200 words runs slower in less than about 2 M cells, one of
    /// 400 words (2,300 characters) runs out in 1 M. A heap that still runs out is retried at the default.
    /// </summary>
    internal static int FestivalHeapCells(string text) =>
        (int)Math.Min(FestivalDefaultHeapCells, 500_000 + 1_500 * text.Sum(c => char.IsAsciiDigit(c) ? 12L : 1L));

    /// <summary>Renders one utterance with festival at a given heap (see <see cref="FestivalHeapCells"/>), for tests.</summary>
    internal static (float[] Samples, int SampleRate) RenderWithHeap(string text, int heapCells) => Spawn(text, heapCells).Collect();

    static Running Spawn(string text, int? heapCells = null)
    {
        var frontend = Available() ?? throw new WaveGradException(
            "speak: no text frontend found; install one with 'sudo apt-get install festival festvox-us-slt-hts' (or 'sudo apt-get install espeak-ng')");
        string dir = Directory.CreateTempSubdirectory("wavegrad-speak-").FullName;
        try
        {
            bool festival = frontend == "festival";
            string input = Path.Combine(dir, festival ? "in.scm" : "in.txt"), wav = Path.Combine(dir, "out.wav");
            string clean = new([.. text.Select(c => char.IsControl(c) ? ' ' : c)]);
            File.WriteAllText(input, festival ? FestivalScript(clean, wav) : clean);
            int heap = heapCells ?? FestivalHeapCells(clean);
            var psi = festival ? new ProcessStartInfo("festival") { ArgumentList = { "--heap", $"{heap}", "-b", input } }
                : new ProcessStartInfo("espeak-ng") { ArgumentList = { "-w", wav, "-f", input } };
            psi.RedirectStandardError = true; psi.RedirectStandardOutput = true; psi.UseShellExecute = false;
            return new Running(Process.Start(psi)!, frontend, dir, wav, text, heap);
        }
        catch
        {
            DeleteFolder(dir);
            throw;
        }
    }

    /// <summary>Removes a temporary folder; a failure to remove it never hides the error being reported.</summary>
    static void DeleteFolder(string dir)
    {
        try { Directory.Delete(dir, true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// festival's script for one utterance: the slt HTS voice where installed, the text synthesised as one utterance and saved
    /// as a WAV (text2wave does the same after loading more of its own: 0.1 s slower, the same samples). The text is a
    /// Scheme string literal, escaped: never code.
    /// </summary>
    internal static string FestivalScript(string text, string wav) =>
        "(if (member 'cmu_us_slt_arctic_hts (voice.list)) (voice_cmu_us_slt_arctic_hts))\n" +
        $"(utt.save.wave (utt.synth (Utterance Text {SchemeString(text)})) {SchemeString(wav)} 'riff)\n";

    /// <summary>A Scheme (festival's SIOD) string literal holding <paramref name="s"/>: backslashes and quotes escaped.</summary>
    internal static string SchemeString(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
