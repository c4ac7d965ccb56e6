// Locates the shared checkpoint fixtures (../shared/fixtures beside the repository root) and makes
// disposable copies of them that tests may break on purpose.
namespace CodeLlamaLsp.Inference.Tests.Loading;

internal static class Fixtures
{
    public const string Tiny = "tiny-32k-4bit-g32";
    public const string Mini4Bit = "mini-4bit-g128-actorder";
    public const string Mini8Bit = "mini-8bit-actorder";

    /// <summary>Repository root, found by walking up to CodeLlamaLsp.sln.</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(System.IO.Path.Combine(dir.FullName, "CodeLlamaLsp.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("CodeLlamaLsp.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>A fixture folder: under CODELLAMA_FIXTURES when set (the GPU machine gets its own copy), else ../shared/fixtures.</summary>
    public static string Path(string name) =>
        Environment.GetEnvironmentVariable("CODELLAMA_FIXTURES") is { Length: > 0 } root
            ? System.IO.Path.GetFullPath(System.IO.Path.Combine(root, name))
            : System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoRoot, "..", "shared", "fixtures", name));

    /// <summary>Copies a fixture into a fresh temp folder (files made writable); delete with the returned scope.</summary>
    public static TempFolder Copy(string name)
    {
        var temp = new TempFolder();
        foreach (string file in Directory.GetFiles(Path(name)))
        {
            string target = System.IO.Path.Combine(temp.Path, System.IO.Path.GetFileName(file));
            File.Copy(file, target);
            File.SetAttributes(target, FileAttributes.Normal);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
        }

        return temp;
    }
}

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = Directory.CreateTempSubdirectory("codellama-loader-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }
}
