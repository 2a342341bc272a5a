using System.CommandLine;
using WaveGradSharp.Cli;

var root = new RootCommand("wavegrad: diffusion-based speech vocoder (WaveGrad) and image diffusion toolkit")
{
    ScheduleCommands.Create(),
};
root.Options.Add(Cli.Verbose);
return root.Parse(args).Invoke();
