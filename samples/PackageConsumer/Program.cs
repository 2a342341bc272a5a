// The library from its NuGet packages: the default voice arrives with WaveGradSharp.Vocoder in voices/ beside this program.
//   dotnet run --project samples/PackageConsumer -- MEL.npy OUT.wav     (a HiFi-GAN-framed 80-band log-mel, e.g. from an acoustic model)
using WaveGradSharp.Audio;
using WaveGradSharp.Vocoder;

using var vocoder = Vocoder.Load(Voice.DefaultName);
var mel = vocoder.AdaptMel(MelFile.Load(args[0]), MelFraming.HifiGan);   // acoustic models emit HiFi-GAN's framing
float[] audio = vocoder.Synthesize(mel, vocoder.Voice.RenderDefaults() with { Seed = 1 });   // the card's render, another seed
Wav.Write(args[1], audio, vocoder.SampleRate);
Console.WriteLine($"{args[1]}: {audio.Length / (double)vocoder.SampleRate:F2} s of speech from voice {vocoder.Voice.Name} in {vocoder.Voice.Directory}");
