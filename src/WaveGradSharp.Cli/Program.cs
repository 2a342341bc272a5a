using System.CommandLine;
using WaveGradSharp.Cli;

var root = new RootCommand("wavegrad: diffusion-based speech vocoder (WaveGrad) and image diffusion toolkit")
{
    SpeakCommands.Speak(),
    SpeakCommands.Play(),
    ScheduleCommands.Create(),
    AudioCommands.Mel(),
    AudioCommands.GriffinLim(),
    AudioCommands.Eval(),
    VocoderCommands.Vocode(),
    VocoderCommands.Resynth(),
    VocoderCommands.Voices(),
    VocoderCommands.VoiceImport(),
    VocoderCommands.Train(),
    ImageCommands.Create(),
};
root.Options.Add(Cli.Verbose);
return root.Parse(args).Invoke();
