// The ways users install and start the server work as the docs write them (issue 15): the README's first
// command leaves stdout to the protocol, and the .NET tool packed from this checkout installs into a clean
// tools folder with the command the extension's "not found" notification and docs/vscode.md give.
// They need the SDK, npm and the sources; elsewhere (the GPU machine runs only the built tests) they are skipped.
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace CodeLlamaLsp.Server.Tests.Install;

[NonParallelizable]
public partial class InstallTests
{
    private static string Root => ServerProcess.RepoRoot;

    [Test]
    public async Task The_readme_first_command_writes_a_content_length_header_first_on_stdout()
    {
        string command = ReadmeFirstCommand();
        Assert.That(command, Does.Contain("--stdio"), "the README's first command starts the language server");
        RequireTool("npm");

        var psi = new ProcessStartInfo("bash", ["-c", command])
        {
            WorkingDirectory = Root,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            // npm ci does not read stdin, so the request waits in the pipe for the server.
            const string body = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,"rootUri":null,"capabilities":{}}}""";
            await process.StandardInput.WriteAsync($"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}");
            await process.StandardInput.FlushAsync();

            var first = new byte[16];
            int read = 0;
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8)); // npm ci, and a first build
            while (read < first.Length)
            {
                int n = await process.StandardOutput.BaseStream.ReadAsync(first.AsMemory(read), timeout.Token);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            Assert.That(Encoding.ASCII.GetString(first, 0, read), Is.EqualTo("Content-Length: "), $"stdout must start with the protocol; stderr:\n{(process.HasExited ? await stderr : string.Empty)}");
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Test]
    public async Task The_packed_dotnet_tool_installs_globally_into_a_clean_tools_folder_and_runs()
    {
        RequireTool("dotnet");
        string project = Path.Combine(Root, "server", "CodeLlamaLsp.Server");
        Assume.That(File.Exists(Path.Combine(project, "CodeLlamaLsp.Server.csproj")), "the sources are not here");
        string work = Directory.CreateTempSubdirectory("codellama-tool-").FullName;
        try
        {
            // The Release build `npm test` just made is packed as it is; without one, pack builds it.
            bool built = File.Exists(Path.Combine(project, "bin", "Release", "net10.0", "codellama-lsp.dll"));
            string packages = Path.Combine(work, "packages");
            var (packCode, packOutput) = await RunAsync("dotnet", ["pack", project, "-c", "Release", "-o", packages, .. built ? new[] { "--no-build" } : []], work, null);
            Assert.That(packCode, Is.Zero, packOutput);

            // `npm run pack-tool && dotnet tool install --global --add-source artifacts/tool --prerelease codellama-lsp`,
            // with DOTNET_CLI_HOME pointing --global at an empty home.
            string home = Path.Combine(work, "home");
            var (installCode, installOutput) = await RunAsync("dotnet", ["tool", "install", "--global", "--add-source", packages, "--prerelease", "codellama-lsp"], work, home);
            Assert.That(installCode, Is.Zero, installOutput);

            string tool = Path.Combine(home, ".dotnet", "tools", OperatingSystem.IsWindows() ? "codellama-lsp.exe" : "codellama-lsp");
            var (versionCode, version) = await RunAsync(tool, ["--version"], work, home);
            var (helpCode, help) = await RunAsync(tool, ["generate", "--help"], work, home);
            Assert.Multiple(() =>
            {
                Assert.That(versionCode, Is.Zero, version);
                Assert.That(version.Trim(), Is.EqualTo(ServerVersion.Informational));
                Assert.That(helpCode, Is.Zero, help);
                Assert.That(help, Does.StartWith("usage: codellama-lsp generate"));
            });
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Test]
    public void The_docs_name_the_tool_install_command_the_tests_run()
    {
        string vscodeDoc = File.ReadAllText(Path.Combine(Root, "docs", "vscode.md"));
        string packageJson = File.ReadAllText(Path.Combine(Root, "package.json"));

        Assert.Multiple(() =>
        {
            Assert.That(vscodeDoc, Does.Contain("npm run pack-tool && dotnet tool install --global --add-source artifacts/tool --prerelease codellama-lsp"));
            Assert.That(packageJson, Does.Contain("\"pack-tool\": \"dotnet pack server/CodeLlamaLsp.Server -c Release -o artifacts/tool\""));
        });
    }

    /// <summary>The one line of the README's first sh block under "Two commands for a fresh machine".</summary>
    private static string ReadmeFirstCommand()
    {
        string readmePath = Path.Combine(Root, "README.md");
        Assume.That(File.Exists(readmePath), "the README is not here");
        string readme = File.ReadAllText(readmePath);
        var section = readme[readme.IndexOf("## Two commands for a fresh machine", StringComparison.Ordinal)..];
        return FirstShellBlock().Match(section).Groups[1].Value.Trim();
    }

    private static void RequireTool(string name)
    {
        bool found = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator)
            .Any(dir => File.Exists(Path.Combine(dir, name)) || File.Exists(Path.Combine(dir, name + ".exe")) || File.Exists(Path.Combine(dir, name + ".cmd")));
        Assume.That(found, $"{name} is not on PATH");
    }

    /// <summary>Runs a command to its end with DOTNET_CLI_HOME set (when given); returns the exit code and all output.</summary>
    private static async Task<(int Code, string Output)> RunAsync(string command, string[] args, string workingDirectory, string? cliHome)
    {
        var psi = new ProcessStartInfo(command, args)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (cliHome != null)
        {
            psi.Environment["DOTNET_CLI_HOME"] = cliHome;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    [GeneratedRegex("```sh\\r?\\n(.*?)\\r?\\n```", RegexOptions.Singleline)]
    private static partial Regex FirstShellBlock();
}
