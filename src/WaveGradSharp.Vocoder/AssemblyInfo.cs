namespace WaveGradSharp.Vocoder;
