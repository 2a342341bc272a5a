namespace WaveGradSharp.Audio;
