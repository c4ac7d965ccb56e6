// Starts the built codellama-lsp executable (the same one users run) for process-level tests.
using System.Diagnostics;

namespace CodeLlamaLsp.Server.Tests;

internal static class ServerProcess
{
    /// <summary>
    /// The server's dll, copied next to the test assembly by the project reference; CODELLAMA_SERVER_DLL runs the
    /// process tests against another build instead (e.g. an older commit, to see a regression test fail there).
    /// </summary>
    public static string ServerDll => Environment.GetEnvironmentVariable("CODELLAMA_SERVER_DLL") is { Length: > 0 } other
        ? other
        : Path.Combine(AppContext.BaseDirectory, "codellama-lsp.dll");

    /// <summary>Repository root, found by walking up to CodeLlamaLsp.sln (fixtures live at ../shared beside it).</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "CodeLlamaLsp.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("CodeLlamaLsp.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(ServerDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    /// <summary>Runs the server with arguments until it exits; returns the exit code and stdout.</summary>
    public static async Task<(int ExitCode, string Stdout)> RunToEndAsync(params string[] args)
    {
        var (exitCode, stdout, _) = await RunWithStderrAsync(args);
        return (exitCode, stdout);
    }

    /// <summary>Runs the server with arguments until it exits; returns the exit code, stdout and stderr.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunWithStderrAsync(params string[] args)
    {
        using var process = Process.Start(StartInfo(args)) ?? throw new InvalidOperationException("could not start codellama-lsp");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
