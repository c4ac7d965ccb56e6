// Turns the user's --model value into a folder: either a folder path, or a Hugging Face model id plus
// revision resolved in the local Hugging Face cache (never downloaded). Model ids and revisions come from
// editor settings, so they are validated as huggingface_hub and git validate them before they name a path:
// neither can leave the cache folder, and what a refs file holds is never quoted back.
using System.Text.RegularExpressions;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>A resolved model: its folder and a display name.</summary>
public sealed record ModelLocation(string Directory, string Name);

/// <summary>Finds a checkpoint folder on disk.</summary>
public static partial class ModelLocator
{
    public const string DefaultRevision = "main";

    /// <summary>A refs file holds one 40-character commit hash; anything larger is not one.</summary>
    public const int MaxRefFileBytes = 1024;

    // git allows longer ref names, but no real branch or tag is near this; it bounds the error messages too.
    private const int MaxRevisionLength = 256;

    /// <summary>Resolves a folder path, or <c>org/name</c> at <paramref name="revision"/> (default main) in the HF cache.</summary>
    public static ModelLocation Resolve(string model, string? revision = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        if (Directory.Exists(model))
        {
            string full = Path.GetFullPath(model);
            return new ModelLocation(full, Path.GetFileName(Path.TrimEndingDirectorySeparator(full)));
        }

        // huggingface_hub's validate_repo_id also refuses "--" and ".." (the cache folder joins parts with "--").
        if (!ModelIdPattern().IsMatch(model) || model.Contains("--", StringComparison.Ordinal) || model.Contains("..", StringComparison.Ordinal))
        {
            throw new ModelLoadException($"model '{model}' not found: no such folder, and it is not a Hugging Face model id (org/name).");
        }

        revision = string.IsNullOrWhiteSpace(revision) ? DefaultRevision : revision;
        if (RevisionProblem(revision) is { } problem)
        {
            throw new ModelLoadException($"revision of model '{model}' is not a valid branch, tag or commit name: {problem}.");
        }

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

        string refs = Path.Combine(repo, "refs");
        string refFile = Path.GetFullPath(Path.Combine(refs, revision));
        if (!refFile.StartsWith(Path.GetFullPath(refs) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            // RevisionProblem already refuses every name that could do this; kept as the last line of defence.
            throw new ModelLoadException($"revision '{revision}' names a path outside {refs}.");
        }

        looked.Add(refFile);
        if (!File.Exists(refFile))
        {
            return null;
        }

        string commit;
        try
        {
            commit = System.Text.Encoding.ASCII.GetString(BoundedFile.ReadAllBytes(refFile, MaxRefFileBytes)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"cannot read {refFile}: {e.Message}", e);
        }

        // The file's content is never quoted: only a valid commit hash is used, and only the path is reported.
        if (!CommitPattern().IsMatch(commit))
        {
            throw new ModelLoadException($"{refFile} does not hold a 40-character commit hash; the Hugging Face cache is damaged.");
        }

        string snapshot = Path.Combine(snapshots, commit);
        if (!Directory.Exists(snapshot))
        {
            looked.Add(snapshot);
            return null;
        }

        return snapshot;
    }

    /// <summary>
    /// Why a revision is not a ref name git's check-ref-format would accept (one of its rules also keeps every
    /// name inside refs/: no "..", no absolute path, no component starting with '.'), or null when it is fine.
    /// </summary>
    public static string? RevisionProblem(string revision)
    {
        ArgumentNullException.ThrowIfNull(revision);
        if (revision.Length > MaxRevisionLength)
        {
            return $"longer than {MaxRevisionLength} characters";
        }

        if (revision == "@" || revision.Contains("@{", StringComparison.Ordinal))
        {
            return "'@' alone and '@{' are not allowed";
        }

        if (revision.Any(c => c < 0x20 || c == 0x7f || " ~^:?*[\\".Contains(c)))
        {
            return "control characters, spaces and ~ ^ : ? * [ \\ are not allowed";
        }

        if (revision.EndsWith('.') || revision.Contains("..", StringComparison.Ordinal))
        {
            return "'..' and a trailing '.' are not allowed";
        }

        foreach (string part in revision.Split('/'))
        {
            if (part.Length == 0)
            {
                return "empty path components (a leading, trailing or double '/') are not allowed";
            }

            if (part.StartsWith('.') || part.EndsWith(".lock", StringComparison.Ordinal))
            {
                return "a component may not start with '.' or end with '.lock'";
            }
        }

        return null;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex ModelIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();
}
