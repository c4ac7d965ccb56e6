// Approved-file snapshots: the actual text is compared exactly with Snapshots/<name>.txt in the source tree.
// UPDATE_SNAPSHOTS=1 rewrites the files instead; review the diff before committing what you approve.
namespace CodeLlamaLsp.Prompting.Tests;

internal static class Snapshots
{
    public static string Folder => Path.Combine(TestEnvironment.RepoRoot, "tests", "CodeLlamaLsp.Prompting.Tests", "Snapshots");

    public static void Approve(string name, string actual)
    {
        string path = Path.Combine(Folder, name + ".txt");
        if (Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS") == "1")
        {
            Directory.CreateDirectory(Folder);
            File.WriteAllText(path, actual);
            return;
        }

        Assert.That(File.Exists(path), Is.True, $"No approved snapshot {path}; run with UPDATE_SNAPSHOTS=1 and review it.");
        string approved = File.ReadAllText(path);
        Assert.That(actual, Is.EqualTo(approved), $"Snapshot {name} differs from {path} (UPDATE_SNAPSHOTS=1 rewrites it; review the diff).");
    }

    /// <summary>Makes control characters visible so that stop strings and CRLF read plainly in approved files.</summary>
    public static string Escape(string text) => text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
}
