// Whole sessions against the real codellama-lsp process over stdio, with the tiny GPTQ fixture on the CPU:
// completions equal what Prompting + Inference produce for the same prompt, cancellation is prompt, bad input
// gets errors without taking the server down, and shutdown/exit end the process with the spec's exit codes.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CodeLlamaLsp.Server.Protocol;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Tests;

[NonParallelizable]
public class ProcessSessionTests
{
    private const string Uri = "file:///tmp/codellama-demo/fib.py";
    private const string Path = "/tmp/codellama-demo/fib.py";
    private const int MaxTokens = 12;

    private static LspTestClient StartWithFixture(params string[] extra) =>
        LspTestClient.StartProcess(["--model", ReferenceCompletion.FixtureDir, "--device", "cpu", "--temperature", "0", "--max-tokens", MaxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extra]);

    [Test]
    public async Task A_session_edits_a_file_and_gets_the_completion_the_engine_generates()
    {
        await using var client = StartWithFixture();
        var init = await client.InitializeAsync();
        Assert.That(init.GetProperty("serverInfo").GetProperty("version").GetString(), Is.EqualTo(ServerVersion.Informational));
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        await client.WaitForNotificationAsync("$/progress", p => p.GetProperty("value").GetProperty("kind").GetString() == "end");
        var percentages = client.Notifications.Where(n => n.Method == "$/progress" && n.Params.GetProperty("value").TryGetProperty("percentage", out _))
            .Select(n => n.Params.GetProperty("value").GetProperty("percentage").GetInt32()).ToList();
        Assert.That(percentages, Is.Ordered.And.Not.Empty, "load progress only moves forward");

        await client.OpenAsync(Uri, "def fibonacci(n):\n    if n < 2:\n        return n\n");
        await client.ChangeAsync(Uri, new Range(new Position(3, 0), new Position(3, 0)), "    return fib");
        const string Text = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fib";
        var (expected, raw) = await ReferenceCompletion.ComputeAsync(Text, Text.Length, Path, "python", MaxTokens);
        TestContext.Out.WriteLine($"engine raw answer: {raw}\npost-processed: {expected}");

        var inline = await client.InlineCompletionAsync(Uri, new Position(3, 14));
        var completion = await client.CompletionAsync(Uri, new Position(3, 14));

        Assert.That(expected, Is.Not.Null.And.Not.Empty, "the fixture's answer here must survive post-processing, or this test proves nothing");
        Assert.That(inline.Items.Single().InsertText, Is.EqualTo(expected));
        Assert.That(inline.Items.Single().Range, Is.EqualTo(new Range(new Position(3, 14), new Position(3, 14))));
        Assert.That(completion.Items.Single().TextEdit!.NewText, Is.EqualTo("fib" + expected), "the word being typed, then the suggestion");
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task Generate_docs_applies_the_edit_that_the_code_action_prompt_yields()
    {
        await using var client = StartWithFixture();
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        const string Text = "import math\n\ndef area(r):\n    return math.pi * r * r\n";
        await client.OpenAsync(Uri, Text);
        int start = Text.IndexOf("def", StringComparison.Ordinal);
        int end = Text.Length - 1;
        var range = new Range(new Position(2, 0), new Position(3, 26));
        var actions = await client.RequestAsync<List<CodeAction>>("textDocument/codeAction", new CodeActionParams(new TextDocumentIdentifier(Uri), range, new CodeActionContext([])));
        var docs = actions.Single(a => a.Command!.CommandName == CodeLlamaCommands.GenerateDocs).Command!;
        var expected = await ReferenceCompletion.CodeActionAsync(Prompting.CodeActionKind.GenerateDocs, Text, start, end, Path, "python");
        TestContext.Out.WriteLine($"reference edit: {expected?.Edit}");

        if (expected?.Edit is not { } edit)
        {
            // The random fixture's answer held no code: the server must say so as an error, not apply anything.
            Assert.That(await client.ErrorCodeOfAsync("workspace/executeCommand", new { command = docs.CommandName, arguments = docs.Arguments }), Is.EqualTo(LspErrorCodes.InternalError));
            Assert.That(client.AppliedEdits, Is.Empty);
        }
        else
        {
            var result = await client.RequestAsync("workspace/executeCommand", new { command = docs.CommandName, arguments = docs.Arguments });
            Assert.That(result.GetProperty("applied").GetBoolean(), Is.True);
            var applied = client.AppliedEdits.Single().GetProperty("edit").GetProperty("changes").GetProperty(Uri)[0];
            Assert.That(applied.GetProperty("newText").GetString(), Is.EqualTo(edit.NewText));
            var lines = new LineIndex(Text);
            Assert.That(applied.GetProperty("range").Deserialize<Range>(LspJson.Options), Is.EqualTo(ToLsp.Range(lines, edit.Range.Start, edit.Range.End)));
        }

        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task Cancelling_a_long_generation_answers_RequestCancelled_at_once()
    {
        await using var client = StartWithFixture("--max-tokens", "2000", "--debounce-ms", "0", "--log-level", "debug");
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        await client.OpenAsync(Uri, "class Tree:\n    def __init__(self):\n        ");

        using var cts = new CancellationTokenSource();
        var pending = client.InlineCompletionAsync(Uri, new Position(2, 8), cts.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await client.DebugStatsAsync()).TokensGenerated < 20 && !pending.IsCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        Assume.That(pending.IsCompleted, Is.False, "the generation ended on its own before it could be cancelled");
        var before = await client.DebugStatsAsync();
        var clock = Stopwatch.StartNew();
        await cts.CancelAsync();
        Exception? error = null;
        try
        {
            await pending;
        }
        catch (OperationCanceledException ex)
        {
            error = ex;
        }

        // The client's JsonRpc turns the reply into OperationCanceledException only for -32800; stats must then show one cancellation.
        Assert.That(error, Is.Not.Null);
        var stats = await client.DebugStatsAsync();
        Assert.That(stats.GenerationsCancelled, Is.EqualTo(1));
        Assert.That(stats.InFlight, Is.Zero);
        long tokensAfterCancel = stats.TokensGenerated - before.TokensGenerated;
        TestContext.Out.WriteLine($"reply after cancel: {clock.ElapsedMilliseconds} ms; tokens after the cancel was sent: {tokensAfterCancel}");
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task Malformed_json_unknown_methods_bad_positions_and_huge_documents_get_errors_and_the_server_stays_up()
    {
        // A small window keeps the CPU prefill short; the document is still 6 MB.
        await using var client = StartWithFixture("--log-level", "debug", "--context-size", "512");
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        await client.OpenAsync(Uri, "x = 1\n");

        await client.SendRawAsync("{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": ");
        await client.SendRawAsync("[1, 2, 3]");
        Assert.That(await client.ErrorCodeOfAsync("codellama/noSuchMethod", new { }), Is.EqualTo(LspErrorCodes.MethodNotFound));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/inlineCompletion", new InlineCompletionParams(new TextDocumentIdentifier(Uri), new Position(40, 0))), Is.EqualTo(LspErrorCodes.InvalidParams));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/completion", new CompletionParams(new TextDocumentIdentifier(Uri), new Position(0, -3))), Is.EqualTo(LspErrorCodes.InvalidParams));
        await client.ChangeAsync(Uri, new Range(new Position(100, 0), new Position(100, 1)), "lost");

        // A 6 MB document: opened, edited at the end, completed there.
        var huge = new StringBuilder();
        for (int i = 0; i < 120_000; i++)
        {
            huge.Append("value_").Append(i).Append(" = compute(").Append(i).Append(")  # padding padding\n");
        }

        const string HugeUri = "file:///tmp/codellama-demo/huge.py";
        await client.OpenAsync(HugeUri, huge.ToString());
        await client.ChangeAsync(HugeUri, new Range(new Position(120_000, 0), new Position(120_000, 0)), "total = ");
        var clock = Stopwatch.StartNew();
        var answer = await client.InlineCompletionAsync(HugeUri, new Position(120_000, 8));
        TestContext.Out.WriteLine($"completion at the end of a {huge.Length / 1e6:F1} MB document: {clock.ElapsedMilliseconds} ms, {answer.Items.Count} item(s)");
        TestContext.Out.WriteLine(string.Join("\n", client.Stderr.Split('\n').Where(l => l.Contains("completion ", StringComparison.Ordinal))));

        var stats = await client.DebugStatsAsync();
        Assert.That(stats.OpenDocuments, Is.EqualTo(2));
        Assert.That(stats.ModelState, Is.EqualTo(ServerStates.Ready));
        Assert.That(client.Notifications.Where(n => n.Method == "$/errorWithoutId").Select(n => n.Params.GetProperty("code").GetInt32()), Is.EqualTo(new[] { LspErrorCodes.ParseError, LspErrorCodes.ParseError }));
        Assert.That(client.Stderr, Does.Contain("line 100 is outside"));
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task A_whole_session_written_at_once_gets_every_response_before_the_process_exits()
    {
        // Clients may pipeline shutdown and exit (or a script may write a whole session in one go): exit must not
        // end the process before the responses already owed are on stdout.
        static string Frame(string json) => $"Content-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}";
        string session = Frame("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":null,"rootUri":null,"capabilities":{}}}""")
            + Frame("""{"jsonrpc":"2.0","method":"initialized","params":{}}""")
            + Frame("""{"jsonrpc":"2.0","id":2,"method":"shutdown"}""")
            + Frame("""{"jsonrpc":"2.0","method":"exit"}""");
        using var process = Process.Start(ServerProcess.StartInfo("--stdio", "--device", "cpu")) ?? throw new InvalidOperationException("could not start codellama-lsp");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(session);
        await process.StandardInput.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        string output = await stdout;
        await stderr;

        Assert.That(output, Does.Contain("\"id\":1,\"result\":{\"capabilities\""));
        Assert.That(output, Does.Contain("\"id\":2,\"result\":null"));
        Assert.That(process.ExitCode, Is.Zero);
        process.StandardInput.Close();
    }

    [Test]
    public async Task Exit_without_shutdown_ends_the_process_with_code_one()
    {
        await using var client = LspTestClient.StartProcess();
        await client.InitializeAsync();
        await client.NotifyAsync("exit", null);
        Assert.That(await client.WaitForExitAsync(), Is.EqualTo(1));
    }

    [Test]
    public async Task Without_a_model_the_server_says_so_and_answers_empty()
    {
        await using var client = LspTestClient.StartProcess();
        Assert.That(await client.ErrorCodeOfAsync("textDocument/completion", new CompletionParams(new TextDocumentIdentifier(Uri), new Position(0, 0))), Is.EqualTo(LspErrorCodes.ServerNotInitialized));
        await client.InitializeAsync();
        var status = await client.WaitForStatusAsync(ServerStates.Error);
        await client.WaitForNotificationAsync("window/showMessage");
        await client.OpenAsync(Uri, "x = ");

        Assert.That(status.GetProperty("message").GetString(), Does.Contain("codellama.model"));
        Assert.That((await client.InlineCompletionAsync(Uri, new Position(0, 4))).Items, Is.Empty);
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    [Test]
    public async Task A_model_that_cannot_load_is_reported_and_the_server_stays_up()
    {
        await using var client = LspTestClient.StartProcess();
        await client.InitializeAsync(initializationOptions: new { model = "/nonexistent/codellama-model", device = "cpu" });
        var status = await client.WaitForStatusAsync(ServerStates.Error, TimeSpan.FromSeconds(30));
        var shown = await client.WaitForNotificationAsync("window/showMessage");

        Assert.That(status.GetProperty("message").GetString(), Does.Contain("/nonexistent/codellama-model"));
        Assert.That(shown.GetProperty("type").GetInt32(), Is.EqualTo(MessageType.Error));
        Assert.That((await client.DebugStatsAsync()).ModelState, Is.EqualTo(ServerStates.Error));
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);

        // An expected failure is one clear line: the stack trace (source paths) is for --log-level debug only.
        var logLines = client.Notifications.Where(n => n.Method == "window/logMessage").Select(n => n.Params.GetProperty("message").GetString()!).ToList();
        Assert.That(logLines, Has.Some.Contains("/nonexistent/codellama-model"));
        Assert.That(logLines, Has.None.Contains("   at "));
        Assert.That(client.Stderr, Does.Not.Contain("   at ").And.Not.Contain("Exception:"));
    }
}
