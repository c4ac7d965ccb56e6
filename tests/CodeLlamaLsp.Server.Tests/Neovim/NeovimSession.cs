// Runs a real headless Neovim with the configuration documented in docs/neovim.md and the lua driver of
// tests/neovim/, against the built server on PATH (through a `codellama-lsp` wrapper script), and reads
// back the driver's JSON report. One run serves every assertion of NeovimEndToEndTests.
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace CodeLlamaLsp.Server.Tests.Neovim;

internal sealed record NeovimRunResult(int ExitCode, JsonElement Report, JsonElement? ServerExit, string Output, string LspLog);

internal static class NeovimSession
{
    public const string ConfigBeginMarker = "-- >>> codellama-lsp: Neovim 0.7 to 0.10";
    public const string ConfigEndMarker = "-- <<< codellama-lsp: Neovim 0.7 to 0.10";

    /// <summary>The nvim executable on PATH, or null when Neovim is not installed.</summary>
    public static string? FindNvim()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, "nvim");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The lua block of docs/neovim.md between the 0.7-0.10 markers: what users paste is what runs here.</summary>
    public static string DocumentedConfig()
    {
        string docPath = Path.Combine(ServerProcess.RepoRoot, "docs", "neovim.md");
        string doc = File.ReadAllText(docPath);
        int begin = doc.IndexOf(ConfigBeginMarker, StringComparison.Ordinal);
        int end = doc.IndexOf(ConfigEndMarker, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            throw new InvalidOperationException($"{docPath} has no lua block between '{ConfigBeginMarker}' and '{ConfigEndMarker}'");
        }

        return doc[begin..(end + ConfigEndMarker.Length)] + "\n";
    }

    /// <summary>
    /// Writes the wrapper, init.lua and spec into <paramref name="workDir"/>, runs tests/neovim/<paramref name="driverName"/>
    /// in nvim (with <paramref name="sourceFile"/> open, if any) and waits for it to exit (killing it after <paramref name="limit"/>).
    /// </summary>
    public static async Task<NeovimRunResult> RunAsync(string nvim, string workDir, string driverName, string? sourceFile, string model, object spec, TimeSpan limit)
    {
        string binDir = Directory.CreateDirectory(Path.Combine(workDir, "bin")).FullName;
        string wrapper = Path.Combine(binDir, "codellama-lsp");
        await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexec dotnet '{ServerProcess.ServerDll}' \"$@\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        string init = Path.Combine(workDir, "init.lua");
        await File.WriteAllTextAsync(init, DocumentedConfig());
        string specPath = Path.Combine(workDir, "spec.json");
        await File.WriteAllTextAsync(specPath, JsonSerializer.Serialize(spec));
        string driver = Path.Combine(ServerProcess.RepoRoot, "tests", "neovim", driverName);

        var psi = new ProcessStartInfo(nvim)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workDir,
        };
        foreach (var arg in new[] { "--headless", "--clean", "-n", "-u", init, "-c", "luafile " + driver })
        {
            psi.ArgumentList.Add(arg);
        }

        if (sourceFile is not null)
        {
            psi.ArgumentList.Add(sourceFile);
        }

        psi.Environment["PATH"] = binDir + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
        psi.Environment["CODELLAMA_MODEL"] = model;
        psi.Environment["CODELLAMA_DEVICE"] = "cpu";
        psi.Environment["CODELLAMA_NVIM_SPEC"] = specPath;
        // Keep Neovim's log, shada and swap files inside the test's folder.
        foreach (var xdg in new[] { "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME" })
        {
            psi.Environment[xdg] = Directory.CreateDirectory(Path.Combine(workDir, xdg.ToLowerInvariant())).FullName;
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {nvim}");
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(limit))
        {
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                output.AppendLine($"nvim was killed after {limit.TotalSeconds:F0} s");
            }
        }

        output.Append(await stdout).Append(await stderr);
        string lspLog = ReadIfExists(Path.Combine(workDir, "xdg_cache_home", "nvim", "lsp.log"))
            + ReadIfExists(Path.Combine(workDir, "xdg_state_home", "nvim", "lsp.log"));
        string resultPath = Path.Combine(workDir, "result.json");
        if (!File.Exists(resultPath))
        {
            throw new InvalidOperationException($"nvim exited {process.ExitCode} without writing {resultPath}.\nOutput:\n{output}\nLSP log:\n{Tail(lspLog)}");
        }

        var report = JsonDocument.Parse(await File.ReadAllTextAsync(resultPath)).RootElement.Clone();
        string exitPath = Path.Combine(workDir, "server-exit.json");
        JsonElement? serverExit = File.Exists(exitPath) ? JsonDocument.Parse(await File.ReadAllTextAsync(exitPath)).RootElement.Clone() : null;
        return new NeovimRunResult(process.ExitCode, report, serverExit, output.ToString(), lspLog);
    }

    public static string Tail(string text, int chars = 6000) => text.Length <= chars ? text : "..." + text[^chars..];

    private static string ReadIfExists(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
}
