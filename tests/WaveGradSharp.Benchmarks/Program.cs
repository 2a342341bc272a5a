using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(WaveGradSharp.Benchmarks.AudioFrontendBenchmarks).Assembly).Run(args);
