using System.Globalization;
using System.Text;

namespace WaveGradSharp.Core;

/// <summary>Text that came from a file or an argument, made safe to print on one terminal line.</summary>
public static class Text
{
    /// <summary>Replaces control characters (ESC, BEL, CR, LF, …) and other non-printing ones by <c>\xNN</c> or
    /// <c>\uNNNN</c>, so that untrusted text cannot move the cursor or change the terminal, and cuts it to
    /// <paramref name="max"/> characters.</summary>
    public static string Escape(string s, int max = 200)
    {
        var b = new StringBuilder(Math.Min(s.Length, max) + 8);
        foreach (var r in s.EnumerateRunes())   // a lone surrogate reads as U+FFFD
        {
            if (b.Length >= max) { b.Append('…'); break; }
            if (r.Value < 0x20 || r.Value == 0x7F) b.Append($"\\x{r.Value:X2}");
            else if (Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator
                     or UnicodeCategory.ParagraphSeparator or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse)
                b.Append($"\\u{r.Value:X4}");
            else b.Append(r.ToString());
        }
        return b.ToString();
    }

    /// <summary>The first line of a (library or runtime) message, for one-line errors.</summary>
    public static string FirstLine(string s) => s.Split('\n', 2)[0].TrimEnd('\r');
}
