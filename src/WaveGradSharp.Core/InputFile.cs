using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace WaveGradSharp.Core;

/// <summary>
/// Opens files the user names as inputs, with one clear error for each way they can be wrong: an empty path, a
/// folder, a missing file, an empty file, or something that is not a regular file (a pipe or a device, whose reads
/// could block forever or never end: both report a length of 0), or a file larger than the reader accepts.
/// </summary>
public static class InputFile
{
    /// <summary>Opens <paramref name="path"/> for reading; <paramref name="kind"/> names what it should be ("WAV file").</summary>
    public static FileStream Open(string path, string kind, long maxBytes = long.MaxValue)
    {
        Check(path, kind, maxBytes);
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new WaveGradException($"{path}: cannot open: {Text.FirstLine(e.Message)}", e);
        }
    }

    /// <summary>The whole text of a small input file (a manifest, a schedule, a card).</summary>
    public static string ReadAllText(string path, string kind, long maxBytes = 1 << 20)
    {
        using var fs = Open(path, kind, maxBytes);
        using var r = new StreamReader(fs);
        return r.ReadToEnd();
    }

    /// <summary>
    /// The lines of a list file that may be empty (a corpus's metadata.csv or val.txt): a file of length 0 is an empty
    /// list and is never opened, so that a pipe or a device in its place (which also reports 0) cannot block the reader.
    /// </summary>
    public static string[] ReadLines(string path, string kind, long maxBytes = 256 << 20)
    {
        var info = new FileInfo(path);
        if (info.Exists && info.Length == 0 && !Directory.Exists(path)) return [];
        return ReadAllText(path, kind, maxBytes).Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
    }

    /// <summary>Reads <paramref name="path"/> as one JSON object (see <see cref="ParseJsonObject(string, string)"/>).</summary>
    public static JsonObject ReadJsonObject(string path, string kind, long maxBytes = 1 << 20) =>
        ParseJsonObject(ReadAllText(path, kind, maxBytes), path);

    static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    /// <summary>
    /// Parses untrusted JSON that must be one object. A repeated property is an error, not "last one wins" (two readers
    /// could then disagree on what a file says); every failure is one <see cref="WaveGradException"/> naming
    /// <paramref name="source"/>, with the parser's message escaped.
    /// </summary>
    public static JsonObject ParseJsonObject(string json, string source) => ParseJsonObject(Encoding.UTF8.GetBytes(json), source);

    /// <inheritdoc cref="ParseJsonObject(string, string)"/>
    public static JsonObject ParseJsonObject(ReadOnlySpan<byte> utf8Json, string source)
    {
        try { return JsonNode.Parse(utf8Json, documentOptions: Strict) as JsonObject ?? throw new WaveGradException($"{source}: not a JSON object"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)   // also bad UTF-8
        {
            throw new WaveGradException($"{source}: invalid JSON ({Text.Escape(Text.FirstLine(e.Message))})");
        }
    }

    /// <summary>Throws unless <paramref name="path"/> is a readable regular file of 1 to <paramref name="maxBytes"/> bytes.</summary>
    public static void Check(string path, string kind, long maxBytes = long.MaxValue)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new WaveGradException($"the path of the {kind} is empty");
        if (Directory.Exists(path)) throw new WaveGradException($"{path}: is a folder, not a {kind}");
        var info = new FileInfo(path);
        if (!info.Exists) throw new WaveGradException($"{path}: file not found");
        if ((info.Attributes & FileAttributes.Device) != 0 || info.Length == 0)
            throw new WaveGradException($"{path}: is empty or not a regular file (a pipe or a device); a {kind} is needed");
        if (info.Length > maxBytes) throw new WaveGradException($"{path}: {info.Length:N0} bytes is larger than a {kind} may be ({maxBytes:N0})");
    }
}
