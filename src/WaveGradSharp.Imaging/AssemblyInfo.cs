namespace WaveGradSharp.Imaging;
