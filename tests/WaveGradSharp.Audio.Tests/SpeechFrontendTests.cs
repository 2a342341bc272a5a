namespace WaveGradSharp.Audio.Tests;

public class SpeechFrontendTests
{
    [Fact]
    public void Text_reaches_festival_as_an_escaped_string_never_as_code()
    {
        Assert.Equal("\"a\\\\b\\\"c\"", SpeechFrontend.SchemeString("a\\b\"c"));
        Assert.Contains("(Utterance Text \"say \\\"(quit)\\\"\")", SpeechFrontend.FestivalScript("say \"(quit)\"", "/tmp/o.wav"));
        if (SpeechFrontend.Available() != "festival") return;   // the rest needs festival
        string marker = Path.Combine(Path.GetTempPath(), $"wavegrad-pwned-{Guid.NewGuid():N}");
        var (samples, rate) = SpeechFrontend.Render($"He said \"hi\" \\\" (system \"touch {marker}\") and\n\0a backslash \\");
        Assert.False(File.Exists(marker), "the text ran as code");
        Assert.True(samples.Length > rate, $"{samples.Length} samples at {rate} Hz");
    }
}
