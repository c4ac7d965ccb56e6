// Issue 17's findings that need the real codellama-lsp process: it exits when its stdout is closed, never
// sends a file's contents back whatever revision a client names, survives broken framing on real stdio,
// completes in a 5 MB single-line file in bounded time and memory, and refuses a config.json that is /dev/zero.
using System.Diagnostics;
using System.Text;
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Tests;

[NonParallelizable]
public class HostileProcessTests
{
    private static LspTestClient StartWithFixture(params string[] extra) =>
        LspTestClient.StartProcess(["--model", ReferenceCompletion.FixtureDir, "--device", "cpu", "--temperature", "0", "--max-tokens", "8", .. extra]);

    /// <summary>The process's peak resident memory so far (Linux), in bytes.</summary>
    private static long PeakRss(Process process)
    {
        string status = File.ReadAllText($"/proc/{process.Id}/status");
        string line = status.Split('\n').First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    [Test]
    public async Task The_server_exits_when_the_client_closes_its_stdout()
    {
        using var process = Process.Start(ServerProcess.StartInfo("--stdio")) ?? throw new InvalidOperationException("could not start codellama-lsp");
        process.BeginErrorReadLine();
        await Task.Delay(500);

        process.StandardOutput.BaseStream.Dispose();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            Assert.Fail("the server was still running 10 s after its stdout was closed");
        }

        Assert.That(process.ExitCode, Is.EqualTo(1), "gone without shutdown, as when stdin closes");
    }

    [Test]
    public async Task A_revision_that_points_at_a_file_never_sends_its_contents_back()
    {
        using var secret = new TempFile("root:x:0:0:hostile-secret-line\n");
        await using var client = LspTestClient.StartProcess();
        await client.InitializeAsync();
        string revision = string.Concat(Enumerable.Repeat("../", 16)) + secret.Path.TrimStart('/');

        await client.NotifyAsync("workspace/didChangeConfiguration", new { settings = new { codellama = new { model = "org/name", revision } } });
        // The first error status is "no model configured", from before the change: wait for the reload's.
        await client.WaitForNotificationAsync(CustomMethods.Status, p => p.GetProperty("state").GetString() == ServerStates.Error && p.GetRawText().Contains("revision", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        await client.DebugStatsAsync();

        var everything = string.Join("\n", client.Notifications.Select(n => n.Params.GetRawText())) + client.Stderr;
        Assert.That(everything, Does.Contain("not a valid branch, tag or commit name"));
        Assert.That(everything, Does.Not.Contain("hostile-secret-line"));
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task Broken_framing_on_stdio_is_answered_and_the_process_keeps_serving()
    {
        await using var client = LspTestClient.StartProcess();
        await client.InitializeAsync();
        const string Body = """{"jsonrpc":"2.0","method":"initialized","params":{}}""";
        var garbage = new byte[2048];
        new Random(3).NextBytes(garbage);

        await client.SendBytesAsync(Encoding.ASCII.GetBytes($"Content-Length: {Body.Length}\r\nContent-Type: application/vscode-jsonrpc; charset=bogus-9\r\n\r\n{Body}"));
        await client.SendBytesAsync(Encoding.ASCII.GetBytes($"Content-Type: application/vscode-jsonrpc\r\n\r\n{Body}"));
        await client.SendBytesAsync(garbage);
        await client.SendBytesAsync(Encoding.ASCII.GetBytes("\r\n"));

        // The random bytes follow the frame without Content-Length: one resynchronisation skips both.
        var stats = await client.DebugStatsAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(300);

        Assert.That(stats, Is.Not.Null);
        Assert.That(client.ParseErrors, Is.EqualTo(new[] { LspErrorCodes.ParseError, LspErrorCodes.ParseError }));
        Assert.That(client.RawOutput, Has.Length.LessThan(64 * 1024), "one answer each, no endless stream");
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task A_completion_in_a_5_MB_single_line_file_costs_under_a_second_and_300_MB_besides_the_model()
    {
        await using var client = StartWithFixture("--context-size", "512", "--log-level", "debug");
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        const string Uri = "file:///tmp/codellama-demo/minified.js";
        var line = new StringBuilder();
        for (int i = 0; line.Length < 5_000_000; i++)
        {
            line.Append("var v").Append(i).Append("=f(").Append(i).Append(");");
        }

        await client.OpenAsync(Uri, line.ToString(), "javascript");
        await client.DebugStatsAsync();
        var totals = new List<long>();
        foreach (int character in new[] { line.Length, line.Length / 2, 10 })
        {
            var clock = Stopwatch.StartNew();
            await client.InlineCompletionAsync(Uri, new Position(0, character));
            totals.Add(clock.ElapsedMilliseconds);
        }

        // The server logs, per completion, the time from request to the model ("queued": debounce, snapshot,
        // prompt building over the line) apart from the generation, which costs the same for any file of the
        // same prompt length and on a shared CPU runner varies by seconds.
        var logged = client.Stderr.Split('\n').Where(l => l.Contains("completion file:///tmp/codellama-demo/minified.js", StringComparison.Ordinal)).ToList();
        var queued = logged.Select(l => int.Parse(System.Text.RegularExpressions.Regex.Match(l, @"queued (\d+) ms").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        long peak = PeakRss(client.Process!);
        TestContext.Out.WriteLine($"completions in a {line.Length / 1e6:F1} MB line (end, middle, start): {string.Join(", ", totals)} ms in all, {string.Join(", ", queued)} ms before the model; peak RSS {peak / 1e6:F0} MB\n{string.Join("\n", logged)}");
        Assert.That(queued, Has.Count.EqualTo(3).And.All.LessThan(1000));
        Assert.That(peak, Is.LessThan(300L * 1000 * 1000));
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task Generate_refuses_a_config_json_linked_to_dev_zero_instead_of_running_out_of_memory()
    {
        using var folder = new TempFile(null);
        Directory.CreateDirectory(folder.Path);
        foreach (string file in Directory.GetFiles(ReferenceCompletion.FixtureDir))
        {
            File.CreateSymbolicLink(System.IO.Path.Combine(folder.Path, System.IO.Path.GetFileName(file)), file);
        }

        File.Delete(System.IO.Path.Combine(folder.Path, "config.json"));
        File.CreateSymbolicLink(System.IO.Path.Combine(folder.Path, "config.json"), "/dev/zero");

        var (code, _) = await ServerProcess.RunToEndAsync("generate", "--model", folder.Path, "--prompt", "x", "--device", "cpu");

        Assert.That(code, Is.EqualTo(1), "a clear error, not SIGABRT (134)");
    }

    /// <summary>A temporary file (or, with null content, a path for a folder) removed on dispose.</summary>
    private sealed class TempFile : IDisposable
    {
        public TempFile(string? content)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "codellama-hostile-" + Guid.NewGuid().ToString("N"));
            if (content is not null)
            {
                File.WriteAllText(Path, content);
            }
        }

        public string Path { get; }

        public void Dispose()
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
            else
            {
                File.Delete(Path);
            }
        }
    }
}
