using System.CommandLine;
using WaveGradSharp.Cli;

var root = new RootCommand("wavegrad: diffusion-based speech vocoder (WaveGrad) and image diffusion toolkit")
{
    SpeakCommands.Speak(),
    SpeakCommands.Play(),
    ServeCommands.Serve(),
    ScheduleCommands.Create(),
    AudioCommands.Mel(),
    AudioCommands.GriffinLim(),
    AudioCommands.Eval(),
    VocoderCommands.Vocode(),
    VocoderCommands.Resynth(),
    VocoderCommands.Voices(),
    VocoderCommands.VoiceImport(),
    VocoderCommands.Train(),
    VocoderCommands.Corpus(),
    ImageCommands.Create(),
    BenchCommands.Create(),
};
root.Options.Add(Cli.Verbose);
var parsed = root.Parse(args);
// A malformed command line is one line and exit code 2, like every other user error (not the usage text).
if (parsed.Errors.Count > 0) return Cli.ParseErrors(parsed);
return parsed.Invoke();
