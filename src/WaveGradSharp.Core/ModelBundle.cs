using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace WaveGradSharp.Core;

/// <summary>
/// Where bundles of one kind are found by name, in this order: the folders in the environment variable
/// (<see cref="EnvironmentVariable"/>, separated by the system's path separator), <c>./Folder</c>, the user's data
/// folder (<c>$XDG_DATA_HOME/wavegradsharp/Folder</c>, default <c>~/.local/share/…</c>; on Windows
/// <c>%LOCALAPPDATA%\wavegradsharp\Folder</c>), <c>Folder</c> beside the program (where a NuGet package puts its
/// content), and <see cref="RepositoryFolder"/> of a source checkout above the program.
/// </summary>
/// <param name="Noun">What a bundle is called in messages ("voice", "model").</param>
/// <param name="ManifestName">The manifest's file name in the bundle folder.</param>
/// <param name="EnvironmentVariable">Variable that lists folders to search first.</param>
/// <param name="Folder">Folder name under the working directory, the user's data folder and the program.</param>
/// <param name="RepositoryFolder">Folder of the source checkout (found by walking up to WaveGradSharp.sln).</param>
public sealed record BundleLibrary(string Noun, string ManifestName, string EnvironmentVariable, string Folder, string RepositoryFolder)
{
    /// <summary>The user's data folder for WaveGradSharp.</summary>
    public static string UserDataRoot()
    {
        if (OperatingSystem.IsWindows()) return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "wavegradsharp");
        string xdg = Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(xdg, "wavegradsharp");
    }

    /// <summary>The folders searched, in order (some may not exist).</summary>
    public IEnumerable<string> SearchPath()
    {
        var seen = new HashSet<string>();
        foreach (var d in Candidates())
        {
            string full = Path.GetFullPath(d);
            if (seen.Add(full)) yield return full;
        }
    }

    IEnumerable<string> Candidates()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env)
            foreach (var p in env.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)) yield return p;
        yield return Folder;
        yield return Path.Combine(UserDataRoot(), Folder);
        yield return Path.Combine(AppContext.BaseDirectory, Folder);
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "WaveGradSharp.sln"))) { yield return Path.Combine(d.FullName, RepositoryFolder); break; }
    }

    /// <summary>Bundle folders found on the search path, first of each name.</summary>
    public IEnumerable<string> Available() =>
        SearchPath().Where(Directory.Exists)
            .SelectMany(d => Directory.GetDirectories(d).Where(v => File.Exists(Path.Combine(v, ManifestName))).Order(StringComparer.Ordinal))
            .DistinctBy(Path.GetFileName);

    /// <summary>A bundle folder: <paramref name="nameOrPath"/> itself when it is a folder, else the first of that name on
    /// the search path; an unknown name is an error that lists where it looked and what it found.</summary>
    public string Find(string nameOrPath)
    {
        if (Directory.Exists(nameOrPath)) return nameOrPath;
        if (nameOrPath.Length > 0 && nameOrPath.IndexOfAny(['/', '\\']) < 0 && nameOrPath is not ("." or ".."))
            foreach (var d in SearchPath())
                if (Directory.Exists(Path.Combine(d, nameOrPath))) return Path.Combine(d, nameOrPath);
        var known = Available().Select(Path.GetFileName).ToArray();
        throw new WaveGradException($"{Noun} '{Text.Escape(nameOrPath)}': not found (looked in {string.Join(", ", SearchPath())}; " +
            $"available: {(known.Length > 0 ? string.Join(", ", known) : "none")})");
    }
}

/// <summary>
/// A model bundle: a folder with a JSON manifest (its <c>kind</c>, its <c>architecture</c>, the network's config and a
/// free-form card: data, steps, hardware, measured quality) and <c>model.safetensors</c> (the weights, fp16 or fp32).
/// Voices (<c>voice.json</c>) and image models (<c>model.json</c>) are bundles; a training run folder is one too,
/// with its <c>checkpoint/</c> beside.
/// </summary>
public sealed class ModelBundle
{
    /// <summary>The largest manifest read (a manifest is a few kB).</summary>
    public const int MaxManifestBytes = 1 << 20;

    /// <summary>The bundle folder.</summary>
    public string Directory { get; }
    /// <summary>The manifest's path.</summary>
    public string ManifestPath { get; }
    /// <summary>The whole manifest.</summary>
    public JsonObject Manifest { get; }
    /// <summary>What the bundle is ("vocoder", "unet", "classifier").</summary>
    public string Kind { get; }
    /// <summary>Which network or implementation reads it ("wavegrad", …).</summary>
    public string Architecture { get; }
    /// <summary>The weights file.</summary>
    public string WeightsPath => Path.Combine(Directory, "model.safetensors");

    ModelBundle(string dir, string manifestPath, JsonObject manifest, string kind, string architecture)
    {
        Directory = dir; ManifestPath = manifestPath; Manifest = manifest; Kind = kind; Architecture = architecture;
    }

    /// <summary>
    /// Reads a bundle by folder or by name on <paramref name="library"/>'s search path. A manifest without a kind or
    /// an architecture (written before they were recorded) gets <paramref name="defaultKind"/> and
    /// <paramref name="defaultArchitecture"/>; <paramref name="expectKinds"/> lists the kinds the caller can use.
    /// </summary>
    public static ModelBundle Load(string nameOrPath, BundleLibrary library, string? defaultKind, string defaultArchitecture, params string[] expectKinds)
    {
        string dir = library.Find(nameOrPath);
        string path = Path.Combine(dir, library.ManifestName);
        if (!File.Exists(path)) throw new WaveGradException($"{dir}: not a {library.Noun} bundle (no {library.ManifestName})");
        var m = InputFile.ReadJsonObject(path, "manifest", MaxManifestBytes);
        string kind = String(m, "kind", path) ?? defaultKind ?? throw new WaveGradException($"{path}: lacks \"kind\"");
        string arch = String(m, "architecture", path) ?? defaultArchitecture;
        if (expectKinds.Length > 0 && !expectKinds.Contains(kind))
            throw new WaveGradException($"{dir}: is a {Text.Escape(kind)} {library.Noun}, a {string.Join(" or ", expectKinds)} is needed here");
        if (!File.Exists(Path.Combine(dir, "model.safetensors"))) throw new WaveGradException($"{Path.Combine(dir, "model.safetensors")}: missing (the " +
            "bundle has no weights)");
        return new ModelBundle(dir, path, m, kind, arch);
    }

    /// <summary>A string field of the manifest, or null when absent; another type is an error naming the file.</summary>
    public static string? String(JsonObject m, string field, string source) => m[field] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw new WaveGradException($"{source}: \"{field}\" must be a string"),
    };

    /// <summary>The weights (or another safetensors file of the bundle).</summary>
    public Dictionary<string, Tensor> LoadWeights(string file = "model.safetensors") => TensorFiles.Load(Path.Combine(Directory, file));

    /// <summary>
    /// Writes a bundle: <paramref name="manifest"/> (with <paramref name="kind"/> and <paramref name="architecture"/>
    /// set) and the weights (floating tensors as fp16 when <paramref name="half"/>). A training run's folder (one
    /// with <c>checkpoint/</c>) gets each file replaced atomically, weights first; any other folder is written whole
    /// in a temporary folder and swapped in, and an existing folder is replaced only when it holds
    /// <paramref name="manifestName"/>, so a mistyped path never deletes unrelated files.
    /// </summary>
    public static void Save(string dir, string manifestName, string kind, string architecture, JsonObject manifest,
        IReadOnlyDictionary<string, Tensor> weights, bool half = false)
    {
        var m = (JsonObject)manifest.DeepClone();
        m["kind"] = kind;
        m["architecture"] = architecture;
        string json = m.ToJsonString(JsonOptions);
        if (System.IO.Directory.Exists(Path.Combine(dir, "checkpoint")))
        {
            TensorFiles.Save(Path.Combine(dir, "model.safetensors"), weights, half);
            AtomicFile.WriteAllText(Path.Combine(dir, manifestName), json);
            return;
        }
        AtomicFile.WriteFolder(dir, marker: manifestName, fill: tmp =>
        {
            TensorFiles.Save(Path.Combine(tmp, "model.safetensors"), weights, half);
            File.WriteAllText(Path.Combine(tmp, manifestName), json);
        });
    }

    /// <summary>Rewrites the manifest only (for example after a schedule search), atomically.</summary>
    public void SaveManifest(JsonObject manifest) => AtomicFile.WriteAllText(ManifestPath, manifest.ToJsonString(JsonOptions));

    /// <summary>Indented, with non-ASCII text kept readable.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
