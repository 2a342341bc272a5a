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

    [Fact]
    public void Festivals_heap_grows_with_the_text_a_digit_as_twelve_characters_up_to_festivals_default()
    {
        Assert.Equal(500_000 + 1_500 * 5, SpeechFrontend.FestivalHeapCells("Hello"));
        Assert.Equal(500_000 + 1_500 * (3 + 2 * 12), SpeechFrontend.FestivalHeapCells("No 42"));
        Assert.Equal(SpeechFrontend.FestivalDefaultHeapCells, SpeechFrontend.FestivalHeapCells(new string('7', 1_000)));
        if (SpeechFrontend.Available() != "festival") return;   // the rest needs festival
        // The smaller heap changes nothing in the samples, and a heap festival runs out of is retried at its default.
        const string sentence = "It is a truth universally acknowledged, that a single man must be in want of a wife.";
        var (small, rate) = SpeechFrontend.RenderWithHeap(sentence, SpeechFrontend.FestivalHeapCells(sentence));
        var (reference, referenceRate) = SpeechFrontend.RenderWithHeap(sentence, SpeechFrontend.FestivalDefaultHeapCells);
        Assert.Equal(referenceRate, rate);
        Assert.Equal(reference, small);
        var (retried, _) = SpeechFrontend.RenderWithHeap(sentence, 20_000);
        Assert.Equal(reference, retried);
    }
}
