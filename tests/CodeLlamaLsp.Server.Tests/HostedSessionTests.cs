// Whole LSP sessions against a server hosted in the test over in-memory streams, with a scripted generator
// in place of the model: lifecycle rules, completions, cancellation, supersession, status, code actions.
using System.Text.Json;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using CodeLlamaLsp.Server.Tests.Doubles;
using StreamJsonRpc;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Tests;

public class HostedSessionTests
{
    private const string Uri = "file:///work/demo.py";
    private static readonly TimeSpan TokenTime = TimeSpan.FromMilliseconds(15);

    /// <summary>Answers "&lt;last char of prompt&gt;0", "1", "2"... so tests can tell which prompt produced a reply.</summary>
    private static ScriptedGenerator Generator(int tokens = 4) =>
        new(r => Enumerable.Range(0, tokens).Select(i => i == 0 ? $"{(r.PromptText.Length > 0 ? r.PromptText[^1] : '_')}0" : $"{i}").ToList(), TokenTime);

    private static async Task<HostedServer> ReadyServerAsync(ScriptedGenerator generator, ServerSettings? settings = null)
    {
        var server = HostedServer.Start(new TestLoader(generator), settings);
        await server.Client.InitializeAsync();
        await server.Client.WaitForStatusAsync(ServerStates.Ready);
        return server;
    }

    [Test]
    public async Task Initialize_advertises_features_utf16_and_the_stamped_version()
    {
        await using var server = HostedServer.Start(new TestLoader(Generator()));
        var result = await server.Client.InitializeAsync();

        Assert.That(result.GetProperty("serverInfo").GetProperty("version").GetString(), Is.EqualTo(ServerVersion.Informational));
        var caps = result.GetProperty("capabilities");
        Assert.That(caps.GetProperty("positionEncoding").GetString(), Is.EqualTo("utf-16"));
        Assert.That(caps.GetProperty("inlineCompletionProvider").GetBoolean(), Is.True);
        Assert.That(caps.GetProperty("textDocumentSync").GetProperty("change").GetInt32(), Is.EqualTo(TextDocumentSyncKind.Incremental));
        Assert.That(caps.GetProperty("executeCommandProvider").GetProperty("commands").EnumerateArray().Select(c => c.GetString()), Is.EquivalentTo(CodeLlamaCommands.All));
    }

    [Test]
    public async Task Requests_before_initialize_get_ServerNotInitialized_and_after_shutdown_InvalidRequest()
    {
        await using var server = HostedServer.Start(new TestLoader(Generator()));
        var client = server.Client;
        Assert.That(await client.ErrorCodeOfAsync(CustomMethods.DebugStats, null), Is.EqualTo(LspErrorCodes.ServerNotInitialized));

        await client.InitializeAsync();
        Assert.That(await client.ErrorCodeOfAsync("initialize", new { capabilities = new { } }), Is.EqualTo(LspErrorCodes.InvalidRequest));
        await client.RequestAsync("shutdown", null);
        Assert.That(await client.ErrorCodeOfAsync(CustomMethods.DebugStats, null), Is.EqualTo(LspErrorCodes.InvalidRequest));

        await client.NotifyAsync("exit", null);
        Assert.That(await server.Run.WaitAsync(TimeSpan.FromSeconds(10)), Is.Zero);
    }

    [Test]
    public async Task Exit_without_shutdown_returns_exit_code_one()
    {
        await using var server = HostedServer.Start(new TestLoader(Generator()));
        await server.Client.InitializeAsync();
        await server.Client.NotifyAsync("exit", null);
        Assert.That(await server.Run.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(1));
    }

    [Test]
    public async Task Inline_completion_and_completion_carry_the_generated_text_at_the_cursor()
    {
        var generator = Generator();
        await using var server = await ReadyServerAsync(generator);
        var client = server.Client;
        await client.OpenAsync(Uri, "def add(a, b):\n    return a");
        await client.ChangeAsync(Uri, new Range(new Position(1, 12), new Position(1, 12)), " +");

        var inline = await client.InlineCompletionAsync(Uri, new Position(1, 14));
        Assert.That(inline.Items, Has.Count.EqualTo(1));
        Assert.That(inline.Items[0].InsertText, Is.EqualTo("+0123"), "generated from the prompt that ends with the edit");
        Assert.That(inline.Items[0].Range, Is.EqualTo(new Range(new Position(1, 14), new Position(1, 14))));
        Assert.That(generator.Requests[^1].PromptText, Is.EqualTo("def add(a, b):\n    return a +"));

        await client.ChangeAsync(Uri, new Range(new Position(1, 14), new Position(1, 14)), " b");
        var completion = await client.CompletionAsync(Uri, new Position(1, 16));
        Assert.That(completion.IsIncomplete, Is.True);
        var edit = completion.Items.Single().TextEdit!;
        Assert.That(edit.NewText, Is.EqualTo("bb0123"), "the word being typed plus the suggestion");
        Assert.That(edit.Range, Is.EqualTo(new Range(new Position(1, 15), new Position(1, 16))));
    }

    [Test]
    public async Task Typing_through_a_suggestion_is_answered_from_the_cache()
    {
        var generator = Generator();
        await using var server = await ReadyServerAsync(generator);
        var client = server.Client;
        await client.OpenAsync(Uri, "x = ");
        var first = await client.InlineCompletionAsync(Uri, new Position(0, 4));
        Assert.That(first.Items.Single().InsertText, Is.EqualTo(" 0123"));

        await client.ChangeAsync(Uri, new Range(new Position(0, 4), new Position(0, 4)), " 0");
        var second = await client.InlineCompletionAsync(Uri, new Position(0, 6));

        Assert.That(second.Items.Single().InsertText, Is.EqualTo("123"));
        Assert.That(generator.Calls, Is.EqualTo(1));
        Assert.That((await client.DebugStatsAsync()).CacheHits, Is.EqualTo(1));
    }

    [Test]
    public async Task Cancel_request_answers_RequestCancelled_and_stops_within_a_token()
    {
        var generator = Generator(tokens: 10_000);
        await using var server = await ReadyServerAsync(generator);
        var client = server.Client;
        await client.OpenAsync(Uri, "while True:");
        using var cts = new CancellationTokenSource();
        var pending = client.InlineCompletionAsync(Uri, new Position(0, 11), cts.Token);
        await WaitUntilAsync(async () => (await client.DebugStatsAsync()).InFlight == 1);
        await cts.CancelAsync();

        Assert.That(async () => await pending, Throws.InstanceOf<OperationCanceledException>(), "StreamJsonRpc maps -32800 to cancellation");
        await WaitUntilAsync(async () => (await client.DebugStatsAsync()).InFlight == 0);
        var stats = await client.DebugStatsAsync();
        Assert.That(stats.GenerationsCancelled, Is.EqualTo(1));
        Assert.That(generator.CancelLatencies.Single(), Is.LessThan(TokenTime * 4));
    }

    [Test]
    public async Task A_newer_completion_for_the_same_document_makes_the_older_answer_empty()
    {
        var generator = Generator(tokens: 200);
        await using var server = await ReadyServerAsync(generator);
        var client = server.Client;
        await client.OpenAsync(Uri, "a = 1\nb = ");
        var older = client.InlineCompletionAsync(Uri, new Position(1, 4));
        await WaitUntilAsync(async () => (await client.DebugStatsAsync()).InFlight == 1);
        await client.ChangeAsync(Uri, new Range(new Position(1, 4), new Position(1, 4)), "a");
        var newer = client.InlineCompletionAsync(Uri, new Position(1, 5));

        Assert.That((await older).Items, Is.Empty);
        Assert.That((await newer).Items.Single().InsertText, Does.StartWith("a0"));
        var stats = await client.DebugStatsAsync();
        Assert.That(stats.GenerationsSuperseded, Is.EqualTo(1));
        Assert.That(stats.MaxInFlight, Is.EqualTo(1));
    }

    [Test]
    public async Task While_the_model_loads_requests_answer_empty_at_once_and_status_reports_loading()
    {
        var gate = new TaskCompletionSource();
        await using var server = HostedServer.Start(new TestLoader(Generator()) { Gate = gate });
        var client = server.Client;
        await client.InitializeAsync();
        var loading = await client.WaitForNotificationAsync(CustomMethods.Status, p => p.GetProperty("state").GetString() == ServerStates.Loading && p.TryGetProperty("progress", out _));
        await client.OpenAsync(Uri, "x");
        var started = System.Diagnostics.Stopwatch.StartNew();
        var answer = await client.InlineCompletionAsync(Uri, new Position(0, 1));

        Assert.That(answer.Items, Is.Empty);
        Assert.That(started.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2)));
        Assert.That(loading.GetProperty("message").GetString(), Does.Contain("test-model"));
        await client.WaitForNotificationAsync("window/workDoneProgress/create");
        await client.WaitForNotificationAsync("$/progress", p => p.GetProperty("value").GetProperty("kind").GetString() == "begin");

        gate.SetResult();
        await client.WaitForStatusAsync(ServerStates.Ready);
        await client.WaitForNotificationAsync("$/progress", p => p.GetProperty("value").GetProperty("kind").GetString() == "end");
        Assert.That((await client.InlineCompletionAsync(Uri, new Position(0, 1))).Items, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task A_model_that_fails_to_load_leaves_the_server_up_and_says_why()
    {
        await using var server = HostedServer.Start(new TestLoader(Generator()) { FailWith = "weights are missing q_proj.qweight" });
        var client = server.Client;
        await client.InitializeAsync();
        var status = await client.WaitForStatusAsync(ServerStates.Error);
        var shown = await client.WaitForNotificationAsync("window/showMessage");

        Assert.That(status.GetProperty("message").GetString(), Does.Contain("q_proj.qweight"));
        Assert.That(shown.GetProperty("message").GetString(), Does.Contain("q_proj.qweight"));
        await client.OpenAsync(Uri, "x");
        Assert.That((await client.CompletionAsync(Uri, new Position(0, 1))).Items, Is.Empty);
    }

    [Test]
    public async Task A_gpu_out_of_memory_says_what_was_needed_and_what_is_free()
    {
        var oom = new CodeLlamaLsp.Inference.Engine.Cuda.InsufficientGpuMemoryException("the model (weights 17.07 GiB, KV cache for 4096 positions 0.75 GiB, buffers 0.12 GiB)", 19_263_000_000, 12_884_901_888, 25_769_803_776);
        await using var server = HostedServer.Start(new TestLoader(Generator()) { FailWithException = oom });
        var client = server.Client;
        await client.InitializeAsync();
        var status = await client.WaitForStatusAsync(ServerStates.Error);
        var shown = await client.WaitForNotificationAsync("window/showMessage");

        foreach (var message in new[] { status.GetProperty("message").GetString(), shown.GetProperty("message").GetString() })
        {
            Assert.That(message, Does.Contain("Out of GPU memory").And.Contain("needs 17.94 GiB").And.Contain("12.00 GiB free of 24.00 GiB").And.Contain("KV cache for 4096 positions"));
        }
    }

    [Test]
    public async Task Bad_positions_unknown_documents_and_unknown_methods_are_errors_and_the_server_stays_up()
    {
        await using var server = await ReadyServerAsync(Generator());
        var client = server.Client;
        await client.OpenAsync(Uri, "one\ntwo");

        Assert.That(await client.ErrorCodeOfAsync("textDocument/inlineCompletion", new InlineCompletionParams(new TextDocumentIdentifier(Uri), new Position(5, 0))), Is.EqualTo(LspErrorCodes.InvalidParams));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/completion", new CompletionParams(new TextDocumentIdentifier(Uri), new Position(0, 99))), Is.EqualTo(LspErrorCodes.InvalidParams));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/completion", new CompletionParams(new TextDocumentIdentifier("file:///nope.py"), new Position(0, 0))), Is.EqualTo(LspErrorCodes.InvalidParams));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/hover", new { textDocument = new { uri = Uri }, position = new { line = 0, character = 0 } }), Is.EqualTo(LspErrorCodes.MethodNotFound));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/completion", new { textDocument = 42 }), Is.EqualTo(LspErrorCodes.InvalidParams).Or.EqualTo(LspErrorCodes.InternalError));

        // An edit outside the text is logged and ignored; the document is unchanged.
        await client.ChangeAsync(Uri, new Range(new Position(9, 0), new Position(9, 0)), "zzz");
        Assert.That((await client.InlineCompletionAsync(Uri, new Position(1, 3))).Items.Single().InsertText, Does.StartWith("o0"));
        Assert.That(server.Log.ToString(), Does.Contain("line 9 is outside"));
    }

    [Test]
    public async Task Malformed_json_gets_a_parse_error_and_the_server_keeps_answering()
    {
        await using var server = await ReadyServerAsync(Generator());
        var client = server.Client;
        await client.SendRawAsync("{ this is not json ");
        await client.SendRawAsync("""{"jsonrpc":"2.0","id":77,"method":""");

        var stats = await client.DebugStatsAsync();
        Assert.That(stats.ModelState, Is.EqualTo(ServerStates.Ready));
        var parseErrors = client.Notifications.Where(n => n.Method == "$/errorWithoutId").Select(n => n.Params.GetProperty("code").GetInt32()).ToList();
        Assert.That(parseErrors, Is.EqualTo(new[] { LspErrorCodes.ParseError, LspErrorCodes.ParseError }));
        Assert.That(client.RawOutput, Does.Contain("\"id\":null"));
    }

    [Test]
    public async Task Code_actions_offer_fix_only_with_diagnostics_and_commands_apply_edits()
    {
        await using var server = await ReadyServerAsync(Generator());
        var client = server.Client;
        await client.OpenAsync(Uri, "def f(x):\n    return x +\n");
        var range = new Range(new Position(1, 0), new Position(1, 14));
        var diagnostic = new Diagnostic(range, "SyntaxError: invalid syntax");

        var withoutDiagnostics = await client.RequestAsync<List<CodeAction>>("textDocument/codeAction", new CodeActionParams(new TextDocumentIdentifier(Uri), range, new CodeActionContext([])));
        var withDiagnostics = await client.RequestAsync<List<CodeAction>>("textDocument/codeAction", new CodeActionParams(new TextDocumentIdentifier(Uri), range, new CodeActionContext([diagnostic])));
        Assert.That(withoutDiagnostics.Select(a => a.Command!.CommandName), Is.EqualTo(new[] { CodeLlamaCommands.Explain, CodeLlamaCommands.GenerateDocs, CodeLlamaCommands.GenerateTests }));
        Assert.That(withDiagnostics.Select(a => a.Command!.CommandName), Does.Contain(CodeLlamaCommands.Fix));

        var fix = withDiagnostics.Single(a => a.Command!.CommandName == CodeLlamaCommands.Fix).Command!;
        var result = await client.RequestAsync("workspace/executeCommand", new { command = fix.CommandName, arguments = fix.Arguments });
        Assert.That(result.GetProperty("applied").GetBoolean(), Is.True);
        var applied = client.AppliedEdits.Single();
        Assert.That(applied.GetProperty("label").GetString(), Is.EqualTo("CodeLlama: Fix"));
        var textEdit = applied.GetProperty("edit").GetProperty("changes").GetProperty(Uri)[0];
        Assert.That(textEdit.GetProperty("newText").GetString(), Is.EqualTo("x0123"), "generated from the Fix prompt, which ends with the diagnostics");
        Assert.That(textEdit.GetProperty("range").Deserialize<Range>(LspJson.Options), Is.EqualTo(range));
    }

    [Test]
    public async Task Explain_streams_notifications_and_shows_the_final_markdown()
    {
        await using var server = await ReadyServerAsync(Generator());
        var client = server.Client;
        await client.OpenAsync(Uri, "print(1)");
        var target = new CommandTarget(Uri, new Range(new Position(0, 0), new Position(0, 8)));

        var result = await client.RequestAsync("workspace/executeCommand", new { command = CodeLlamaCommands.Explain, arguments = new[] { target } });
        string markdown = result.GetProperty("markdown").GetString()!;

        Assert.That(markdown, Is.EqualTo("|0123"), "generated from the Explain prompt (which ends with the empty diagnostics list)");
        var done = await client.WaitForNotificationAsync(CustomMethods.Explanation, p => p.GetProperty("done").GetBoolean());
        Assert.That(done.GetProperty("markdown").GetString(), Is.EqualTo(markdown));
        Assert.That(client.Notifications.Count(n => n.Method == CustomMethods.Explanation), Is.GreaterThan(2), "streamed before done");
        await client.WaitForNotificationAsync("window/showMessage", p => p.GetProperty("message").GetString() == markdown);
    }

    [Test]
    public async Task Configuration_changes_apply_and_a_new_model_is_loaded()
    {
        var generator = Generator();
        var loader = new TestLoader(generator);
        await using var server = HostedServer.Start(loader);
        var client = server.Client;
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready);

        await client.NotifyAsync("workspace/didChangeConfiguration", new { settings = new { codellama = new { maxTokens = 7 } } });
        await client.NotifyAsync("workspace/didChangeConfiguration", new { settings = new { codellama = new { model = "other-model" } } });
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(10));
        await WaitUntilAsync(() => Task.FromResult(loader.Loads.Count == 2));

        Assert.That(loader.Loads[^1].Model, Is.EqualTo("other-model"));
        Assert.That(loader.Loads[^1].MaxTokens, Is.EqualTo(7));
        await client.WaitForStatusAsync(ServerStates.Ready);
        await WaitUntilAsync(() => Task.FromResult(server.Server.Context.Models.Current?.Name == "other-model"));
    }

    [Test]
    public async Task Notifications_before_initialize_are_dropped_and_exit_still_works()
    {
        await using var server = HostedServer.Start(new TestLoader(Generator()));
        await server.Client.OpenAsync(Uri, "x");
        await server.Client.InitializeAsync();
        Assert.That((await server.Client.DebugStatsAsync()).OpenDocuments, Is.Zero);
    }

    [Test]
    public async Task An_inline_completion_continues_the_selected_completion_item()
    {
        var generator = Generator();
        await using var server = await ReadyServerAsync(generator);
        var client = server.Client;
        await client.OpenAsync(Uri, "import os\nos.pa");
        var selected = new SelectedCompletionInfo(new Range(new Position(1, 3), new Position(1, 5)), "path");
        var request = new InlineCompletionParams(new TextDocumentIdentifier(Uri), new Position(1, 5), new InlineCompletionContext(2, selected));

        var list = await client.RequestAsync<InlineCompletionList>("textDocument/inlineCompletion", request);

        Assert.That(generator.Requests[^1].PromptText, Is.EqualTo("import os\nos.path"), "generated as if the item were accepted");
        Assert.That(list.Items.Single().InsertText, Is.EqualTo("pathh0123"));
        Assert.That(list.Items.Single().Range, Is.EqualTo(selected.Range));
    }

    [Test]
    public async Task Status_turns_busy_while_generating_and_back_to_ready()
    {
        await using var server = await ReadyServerAsync(Generator());
        var client = server.Client;
        await client.OpenAsync(Uri, "x");
        await client.InlineCompletionAsync(Uri, new Position(0, 1));

        var states = client.Notifications.Where(n => n.Method == CustomMethods.Status).Select(n => n.Params.GetProperty("state").GetString()).ToList();
        await client.WaitForNotificationAsync(CustomMethods.Status, p => p.GetProperty("state").GetString() == ServerStates.Busy);
        await WaitUntilAsync(() => Task.FromResult(client.Notifications.Last(n => n.Method == CustomMethods.Status).Params.GetProperty("state").GetString() == ServerStates.Ready));
        Assert.That(states, Does.Contain(ServerStates.Loading));
    }

    [Test]
    public async Task SetTrace_controls_what_reaches_window_logMessage()
    {
        await using var server = HostedServer.Start(new TestLoader(Generator()), new ServerSettings { Model = "test-model", DebounceMs = 0, LogLevel = null });
        var client = server.Client;
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready);
        await client.NotifyAsync("$/setTrace", new { value = "off" });
        await client.OpenAsync("file:///quiet.py", "x");
        await client.NotifyAsync("$/setTrace", new { value = "verbose" });
        await client.OpenAsync("file:///loud.py", "x");
        await client.WaitForNotificationAsync("window/logMessage", p => p.GetProperty("message").GetString()!.Contains("loud.py", StringComparison.Ordinal));

        Assert.That(client.Notifications.Any(n => n.Method == "window/logMessage" && n.Params.GetProperty("message").GetString()!.Contains("quiet.py", StringComparison.Ordinal)), Is.False);
    }

    [Test]
    public async Task Closing_a_document_forgets_it_and_its_cached_suggestion()
    {
        var generator = Generator();
        await using var server = await ReadyServerAsync(generator);
        var client = server.Client;
        await client.OpenAsync(Uri, "x = ");
        await client.InlineCompletionAsync(Uri, new Position(0, 4));
        await client.NotifyAsync("textDocument/didClose", new DidCloseTextDocumentParams(new TextDocumentIdentifier(Uri)));
        Assert.That(await client.ErrorCodeOfAsync("textDocument/inlineCompletion", new InlineCompletionParams(new TextDocumentIdentifier(Uri), new Position(0, 4))), Is.EqualTo(LspErrorCodes.InvalidParams));

        await client.OpenAsync(Uri, "x = ");
        await client.InlineCompletionAsync(Uri, new Position(0, 4));
        Assert.That(generator.Calls, Is.EqualTo(2), "the reopened document generated again");
        Assert.That((await client.DebugStatsAsync()).CacheHits, Is.Zero);
    }

    [Test]
    public async Task Typing_waits_for_the_debounce_but_an_invoked_request_does_not()
    {
        var generator = Generator(tokens: 1);
        await using var server = HostedServer.Start(new TestLoader(generator), new ServerSettings { Model = "test-model", DebounceMs = 1500 });
        var client = server.Client;
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready);
        await client.OpenAsync(Uri, "a");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var invoked = await client.RequestAsync<InlineCompletionList>("textDocument/inlineCompletion", new InlineCompletionParams(new TextDocumentIdentifier(Uri), new Position(0, 1), new InlineCompletionContext(1)));
        var invokedTime = clock.Elapsed;
        await client.ChangeAsync(Uri, new Range(new Position(0, 1), new Position(0, 1)), "b");
        clock.Restart();
        var typed = await client.InlineCompletionAsync(Uri, new Position(0, 2));
        var typedTime = clock.Elapsed;

        Assert.That(invoked.Items.Single().InsertText, Is.EqualTo("a0"));
        Assert.That(typed.Items.Single().InsertText, Is.EqualTo("b0"));
        Assert.That(invokedTime, Is.LessThan(TimeSpan.FromMilliseconds(1000)));
        Assert.That(typedTime, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(1500)));
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("condition not reached within 10 s");
            }

            await Task.Delay(10);
        }
    }
}
