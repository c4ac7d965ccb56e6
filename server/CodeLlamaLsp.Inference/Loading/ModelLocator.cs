// Turns the user's --model value into a folder: either a folder path, or a Hugging Face model id plus
// revision resolved in the local Hugging Face cache (never downloaded).
using System.Text.RegularExpressions;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>A resolved model: its folder and a display name.</summary>
public sealed record ModelLocation(string Directory, string Name);

/// <summary>Finds a checkpoint folder on disk.</summary>
public static partial class ModelLocator
{
    public const string DefaultRevision = "main";

    /// <summary>Resolves a folder path, or <c>org/name</c> at <paramref name="revision"/> (default main) in the HF cache.</summary>
    public static ModelLocation Resolve(string model, string? revision = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        if (Directory.Exists(model))
        {
            string full = Path.GetFullPath(model);
            return new ModelLocation(full, Path.GetFileName(Path.TrimEndingDirectorySeparator(full)));
        }

        if (!ModelIdPattern().IsMatch(model))
        {
            throw new ModelLoadException($"model '{model}' not found: no such folder, and it is not a Hugging Face model id (org/name).");
        }

        revision = string.IsNullOrWhiteSpace(revision) ? DefaultRevision : revision;
        var looked = new List<string>();
        foreach (string hub in CacheRoots())
        {
            string repo = Path.Combine(hub, "models--" + model.Replace("/", "--", StringComparison.Ordinal));
            string? snapshot = FindSnapshot(repo, revision, looked);
            if (snapshot != null)
            {
                string name = revision == DefaultRevision ? model : $"{model}@{revision}";
                return new ModelLocation(snapshot, name);
            }
        }

        throw new ModelLoadException(
            $"model '{model}' (revision '{revision}') is not a folder and is not in the Hugging Face cache; looked in: {string.Join("; ", looked)}. "
            + $"Nothing is downloaded automatically: run `huggingface-cli download {model} --revision {revision}` or pass a folder.");
    }

    /// <summary>Hub cache folders in the order huggingface_hub uses them: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache.</summary>
    public static IReadOnlyList<string> CacheRoots()
    {
        var roots = new List<string>();
        string? hubCache = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
        if (!string.IsNullOrEmpty(hubCache))
        {
            roots.Add(hubCache);
        }

        string? hfHome = Environment.GetEnvironmentVariable("HF_HOME");
        if (!string.IsNullOrEmpty(hfHome))
        {
            roots.Add(Path.Combine(hfHome, "hub"));
        }
        else
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrEmpty(xdg))
            {
                roots.Add(Path.Combine(xdg, "huggingface", "hub"));
            }

            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (!string.IsNullOrEmpty(home))
            {
                roots.Add(Path.Combine(home, ".cache", "huggingface", "hub"));
            }
        }

        return roots.Distinct().ToList();
    }

    private static string? FindSnapshot(string repo, string revision, List<string> looked)
    {
        string snapshots = Path.Combine(repo, "snapshots");
        if (CommitPattern().IsMatch(revision))
        {
            string direct = Path.Combine(snapshots, revision);
            looked.Add(direct);
            return Directory.Exists(direct) ? direct : null;
        }

        string refFile = Path.Combine(repo, "refs", revision);
        looked.Add(refFile);
        if (!File.Exists(refFile))
        {
            return null;
        }

        string commit = File.ReadAllText(refFile).Trim();
        string snapshot = Path.Combine(snapshots, commit);
        if (!CommitPattern().IsMatch(commit) || !Directory.Exists(snapshot))
        {
            looked.Add(snapshot);
            return null;
        }

        return snapshot;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex ModelIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();
}
