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
        var output = Cli.Output("Output WAV", required: false);
        var voice = new Option<string>("--voice") { Description = "Voice name or folder", DefaultValueFactory = _ => VocoderCommands.DefaultVoice };
        var steps = VocoderCommands.StepsOpt();
        var seed = Cli.Seed(); var device = Cli.Device();
        var play = new Option<bool>("--play") { Description = "Play while rendering (sound starts after the first chunk)" };
        var flags = new VocoderCommands.RenderFlags(SynthesisOptions.LowLatency);   // a listener waits on the first sound
        var cmd = new Command("speak", "Text to speech with a voice, streamed sentence by sentence")
            { text, file, output, voice, steps, seed, device, play };
        flags.AddTo(cmd);
        cmd.SetAction(pr => Cli.Run(pr, () =>
        {
            string input = pr.GetValue(file) is string f ? InputFile.ReadAllText(f, "text file", 16 << 20)
                : pr.GetValue(text) is "-" ? Console.In.ReadToEnd()
                : pr.GetValue(text) ?? throw new WaveGradException("give the text as an argument, with -f FILE, or '-' for standard input");
            string? outPath = pr.GetValue(output);
            if (outPath is null && !pr.GetValue(play)) throw WaveGradException.About("give an Output file, or --play, or both", "Output");
            // The speech program starts on the first sentence before libtorch and the voice load: it takes about as long.
            var frontend = new SpeechProgramFrontend();
            if (TextToSpeech.Sentences(input) is [var firstSentence, ..]) frontend.Prefetch(firstSentence);
            Cli.EnsureTorch();
            var voiceCard = Voice.Load(pr.GetValue(voice)!);
            var mels = SentenceMels.Start(input, frontend, voiceCard.Mel);
            using var vocoder = VocoderCommands.LoadVocoder(voiceCard, pr.GetValue(device)!, precision: flags.Precision(pr));
            var tts = new TextToSpeech(vocoder, frontend);
            var synthesis = flags.Options(pr, vocoder, pr.GetValue(steps), pr.GetValue(seed));
            var opts = new SpeechOptions { Synthesis = SpeechOptions.ForListening(synthesis) };
            Console.Error.WriteLine($"frontend: {frontend.Name}; {mels.Sentences.Count} sentence(s); voice {vocoder.Voice.Name}, " +
                $"{VocoderCommands.DescribeSteps(opts.Synthesis!)}");
            var started = Process.GetCurrentProcess().StartTime;
            var sw = Stopwatch.StartNew();
            double firstAudio = double.NaN;
            // Playback started at the first audio runs dry wherever a chunk comes after the audio before it has played.
            double playedUntil = 0, waited = 0;
            int gaps = 0;
            using var wav = outPath is null ? null : new WavStreamWriter(outPath, vocoder.SampleRate);
            using var player = pr.GetValue(play) ? Playback.OpenStream(vocoder.SampleRate) : null;
            long samples = 0;
            foreach (var chunk in tts.Speak(mels, opts))
            {
                double now = (DateTime.Now - started).TotalSeconds;
                if (double.IsNaN(firstAudio)) firstAudio = playedUntil = now;
                else if (now > playedUntil) { gaps++; waited += now - playedUntil; playedUntil = now; }
                playedUntil += chunk.Length / (double)vocoder.SampleRate;
                wav?.Write(chunk);
                player?.Write(chunk);
                samples += chunk.Length;
            }
            double secs = sw.Elapsed.TotalSeconds, dur = samples / (double)vocoder.SampleRate;
            wav?.Commit();
            string sound = player?.FirstSound is DateTime t ? $", first sound {(t - started).TotalSeconds:F2} s" : "";
            string flow = gaps == 0 ? "no gaps after it" : $"{gaps} gap(s) after it, {waited:F2} s in all";
            Console.WriteLine($"{(outPath is null ? "spoke" : $"wrote {outPath}:")} {dur:F2} s of speech in {secs:F2} s " +
                $"(first audio {firstAudio:F2} s after the process started, {flow}{sound}; real-time factor {secs / dur:F2})");
            player?.Finish();
            return 0;
        }, needsTorch: false));   // libtorch is loaded once the speech program runs
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
