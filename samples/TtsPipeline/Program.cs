// A text-to-speech pipeline's last stage: mel frames arrive from an acoustic model (here: .npy files, one per
// sentence, [n_mels, frames] in the voice's preset) and are vocoded with the streaming API, audio written as it
// comes. Prints the time to first audio and the real-time factor.
//
//   dotnet run --project samples/TtsPipeline -- [--voice NAME] [--steps N] [-o out.wav] MEL.npy [MEL2.npy ...]
//   (with no .npy given it makes one from a festival rendering, if festival or espeak-ng is installed)
using WaveGradSharp.Core;
using System.Diagnostics;
using WaveGradSharp.Audio;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;

string voiceName = Voice.DefaultName, output = "pipeline.wav";
string? steps = null;
var inputs = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--voice": voiceName = args[++i]; break;
        case "--steps": steps = args[++i]; break;
        case "-o": output = args[++i]; break;
        default: inputs.Add(args[i]); break;
    }
}

var clock = Stopwatch.StartNew();
using var vocoder = Vocoder.Load(voiceName);                       // name under voices/ or a folder
var defaults = vocoder.Voice.RenderDefaults(SynthesisOptions.LowLatency);   // the card's render, tuned for a listener
var sampler = steps is null ? defaults.Sampler : vocoder.Voice.Sampler(defaults.Sampler!.Name, steps);
var options = defaults with { Sampler = sampler, ChunkFrames = 48 };
Console.WriteLine($"voice {vocoder.Voice.Name}: {vocoder.SampleRate} Hz, preset {vocoder.Voice.Mel.Name}, " +
    $"{options.Sampler!.Name} over {options.Sampler.Levels.Count} levels; loaded in {clock.Elapsed.TotalSeconds:F2} s");

if (inputs.Count == 0)
{
    // Stand-in for an acoustic model: mel of a festival/espeak-ng rendering.
    using var spec = new MelSpectrogram(vocoder.Voice.Mel);
    var speech = SpeechFrontend.Render("This sentence was vocoded chunk by chunk, as a text to speech pipeline would.", vocoder.SampleRate);
    Npy.Write("pipeline-input.npy", spec.Compute(tensor(speech)));
    inputs.Add("pipeline-input.npy");
}

var audio = new List<float>();
double firstAudio = double.NaN;
var start = Stopwatch.StartNew();
foreach (var path in inputs)
{
    var mel = MelFile.Load(path);                                    // [n_mels, frames]
    MelFile.CheckNMels(mel, vocoder.Voice.Mel.NMels, path);
    foreach (var chunk in vocoder.SynthesizeStreaming(mel, options))
    {
        if (double.IsNaN(firstAudio)) firstAudio = start.Elapsed.TotalSeconds;
        audio.AddRange(chunk);                                       // a player would be fed here
        Console.WriteLine($"  {start.Elapsed.TotalSeconds,6:F2} s: +{chunk.Length / (double)vocoder.SampleRate:F2} s of audio");
    }
}
double seconds = audio.Count / (double)vocoder.SampleRate;
Wav.Write(output, audio.ToArray(), vocoder.SampleRate);
Console.WriteLine($"wrote {output}: {seconds:F2} s of audio; first audio after {firstAudio:F2} s; real-time factor {start.Elapsed.TotalSeconds / seconds:F2}");
