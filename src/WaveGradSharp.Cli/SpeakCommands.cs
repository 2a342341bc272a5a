using System.CommandLine;
using System.Diagnostics;
using WaveGradSharp.Audio;
using WaveGradSharp.Diffusion;
using WaveGradSharp.Vocoder;
using static TorchSharp.torch;
using WaveGradSharp.Core;

namespace WaveGradSharp.Cli;

/// <summary><c>wavegrad speak</c> and <c>wavegrad play</c>.</summary>
static class SpeakCommands
{
    public static Command Speak()
    {
        var text = new Argument<string?>("text") { Description = "Text to speak; '-' reads standard input", Arity = ArgumentArity.ZeroOrOne };
        var file = new Option<string?>("--file", "-f") { Description = "Read the text from a file" };
        var output = Cli.Output("Output WAV");
        var voice = new Option<string>("--voice") { Description = "Voice name or folder", DefaultValueFactory = _ => VocoderCommands.DefaultVoice };
        var steps = new Option<string?>("--steps") { Description = "Schedule: step count, name or JSON file (default: the voice's)" };
        var seed = Cli.Seed(); var device = Cli.Device();
        var play = new Option<bool>("--play") { Description = "Play the result after writing it" };
        var flags = new VocoderCommands.RenderFlags();
        var cmd = new Command("speak", "Text → festival/espeak-ng utterance → mel (the voice's preset) → WaveGrad waveform; long text is split into sentences and streamed")
            { text, file, output, voice, steps, seed, device, play };
        flags.AddTo(cmd);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            string input = pr.GetValue(file) is string f
                ? InputFile.ReadAllText(f, "text file", 16 << 20)
                : pr.GetValue(text) is "-" ? Console.In.ReadToEnd()
                : pr.GetValue(text) ?? throw new WaveGradException("speak: give the text as an argument, with -f FILE, or '-' for standard input");
            var sentences = SpeechFrontend.Sentences(input);
            if (sentences.Count == 0) throw new WaveGradException("speak: the text has no words");
            using var vocoder = VocoderCommands.LoadVocoder(pr.GetValue(voice)!, pr.GetValue(device)!);
            using var spec = new MelSpectrogram(vocoder.Voice.Mel);
            var opts = flags.Options(pr, vocoder, pr.GetValue(steps), pr.GetValue(seed));
            var audio = new List<float>();
            var pause = new float[vocoder.SampleRate / 4];
            var sw = Stopwatch.StartNew();
            double firstAudio = double.NaN;
            Console.Error.WriteLine($"frontend: {SpeechFrontend.Available()}; {sentences.Count} sentence(s); voice {vocoder.Voice.Name}, {VocoderCommands.DescribeSteps(opts)}");
            foreach (var sentence in sentences)
            {
                var utterance = SpeechFrontend.Render(sentence, vocoder.SampleRate);
                using var scope = NewDisposeScope();
                var mel = spec.Compute(tensor(utterance));
                foreach (var chunk in vocoder.SynthesizeStreaming(mel, opts))
                {
                    if (double.IsNaN(firstAudio)) firstAudio = sw.Elapsed.TotalSeconds;
                    audio.AddRange(chunk);
                }
                if (sentences.Count > 1) audio.AddRange(pause);
            }
            double secs = sw.Elapsed.TotalSeconds;
            Wav.Write(pr.GetValue(output)!, audio.ToArray(), vocoder.SampleRate);
            double dur = audio.Count / (double)vocoder.SampleRate;
            Console.WriteLine($"wrote {pr.GetValue(output)}: {dur:F2} s of speech in {secs:F2} s (first audio after {firstAudio:F2} s; real-time factor {secs / dur:F2})");
            if (pr.GetValue(play)) Playback.TryPlay(pr.GetValue(output)!);
            return 0;
        }));
        return cmd;
    }

    public static Command Play()
    {
        var file = new Argument<string>("wav") { Description = "WAV file to play" };
        var cmd = new Command("play", "Play a WAV file through aplay, paplay, pw-play, play (sox) or ffplay") { file };
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            string f = pr.GetValue(file)!;
            Wav.Probe(f);   // a clear error for a missing or broken file
            return Playback.TryPlay(f) ? 0 : 1;
        }, needsTorch: false));
        return cmd;
    }
}
