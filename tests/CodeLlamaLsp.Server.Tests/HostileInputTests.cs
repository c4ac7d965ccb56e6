// Issue 17's findings that a hosted server shows (scripted generator, in-memory streams): settings out of
// range or naming a secret are refused with a warning and the previous value kept, wrong JSON types answer
// InvalidParams, stale didChange versions are refused, and large edit batches apply in one pass.
using System.Diagnostics;
using System.Text.Json;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using CodeLlamaLsp.Server.Tests.Doubles;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Tests;

public class HostileInputTests
{
    private const string Uri = "file:///work/hostile.py";

    private static async Task<HostedServer> ReadyServerAsync()
    {
        var server = HostedServer.Start(new TestLoader(new ScriptedGenerator(_ => ["a", "b"], TimeSpan.Zero)));
        await server.Client.InitializeAsync();
        await server.Client.WaitForStatusAsync(ServerStates.Ready);
        return server;
    }

    private static async Task<ServerSettings> ConfigureAsync(HostedServer server, object settings)
    {
        await server.Client.NotifyAsync("workspace/didChangeConfiguration", new { settings = new { codellama = settings } });
        await server.Client.DebugStatsAsync(); // handlers run in arrival order: the change has been applied
        return server.Server.Context.Settings;
    }

    private static IEnumerable<string> Warnings(LspTestClient client) =>
        client.Notifications.Where(n => n.Method == "window/showMessage" && n.Params.GetProperty("type").GetInt32() == MessageType.Warning)
            .Select(n => n.Params.GetProperty("message").GetString()!);

    [TestCase("temperature", "NaN")]
    [TestCase("temperature", -5)]
    [TestCase("temperature", 1e9)]
    [TestCase("maxTokens", 2147483647)]
    [TestCase("maxTokens", 0)]
    [TestCase("maxPromptTokens", 1e12)]
    [TestCase("debounceMs", 1e9)]
    [TestCase("debounceMs", -1)]
    [TestCase("contextSize", 1 << 30)]
    public async Task A_numeric_setting_out_of_its_range_is_refused_with_a_warning_and_the_previous_value_kept(string name, object value)
    {
        await using var server = await ReadyServerAsync();
        var before = server.Server.Context.Settings;

        var after = await ConfigureAsync(server, new Dictionary<string, object> { [name] = value });

        Assert.That(after, Is.EqualTo(before));
        var (min, max) = ServerSettings.NumericRanges[name];
        Assert.That(Warnings(server.Client), Has.One.Contains(name).And.Contains($"from {min} to {max}"));
    }

    [Test]
    public async Task Completions_still_work_after_absurd_settings_were_refused()
    {
        await using var server = await ReadyServerAsync();
        await ConfigureAsync(server, new { temperature = "NaN", maxTokens = 2147483647, debounceMs = 1e9 });
        await server.Client.OpenAsync(Uri, "x = ");

        var answer = await server.Client.InlineCompletionAsync(Uri, new Position(0, 4)).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.That(answer.Items.Single().InsertText, Is.EqualTo("ab"));
    }

    [TestCase("AWS_SECRET_ACCESS_KEY")]
    [TestCase("GITHUB_TOKEN")]
    [TestCase("HOME")]
    [TestCase("openai_api_key")]
    public async Task ApiKeyEnv_must_name_an_api_key_variable(string variable)
    {
        await using var server = await ReadyServerAsync();

        var after = await ConfigureAsync(server, new { apiKeyEnv = variable, endpoint = "http://attacker.example/v1" });

        Assert.That(after.ApiKeyEnv, Is.Null);
        Assert.That(Warnings(server.Client), Has.One.Contains("apiKeyEnv").And.Contains("CODELLAMA_"));
    }

    [TestCase("CODELLAMA_API_KEY")]
    [TestCase("OPENAI_API_KEY")]
    [TestCase("VLLM_API_KEY")]
    public void ApiKeyEnv_accepts_the_documented_names(string variable)
    {
        var problems = new List<string>();
        using var json = JsonDocument.Parse(JsonSerializer.Serialize(new { apiKeyEnv = variable }));

        Assert.That(new ServerSettings().Merge(json.RootElement, problems).ApiKeyEnv, Is.EqualTo(variable));
        Assert.That(problems, Is.Empty);
    }

    public static IEnumerable<TestCaseData> WrongTypes()
    {
        var position = new { line = 0, character = 0 };
        var document = new { uri = Uri };
        yield return new TestCaseData("textDocument/inlineCompletion", new { textDocument = document, position = "0:0" }).SetName("Position_as_a_string");
        yield return new TestCaseData("textDocument/inlineCompletion", new { position }).SetName("Missing_textDocument");
        yield return new TestCaseData("textDocument/completion", new { textDocument = 42, position }).SetName("TextDocument_as_a_number");
        yield return new TestCaseData("textDocument/completion", new { textDocument = document }).SetName("Missing_position");
        yield return new TestCaseData("textDocument/codeAction", new { textDocument = document, range = new { start = position } }).SetName("Range_without_end");
        yield return new TestCaseData("textDocument/codeAction", new { textDocument = document, range = new { start = position, end = position }, context = "none" }).SetName("Context_as_a_string");
        yield return new TestCaseData("workspace/executeCommand", new { command = 7 }).SetName("Command_as_a_number");
    }

    [TestCaseSource(nameof(WrongTypes))]
    public async Task Params_of_the_wrong_shape_answer_InvalidParams(string method, object parameters)
    {
        await using var server = await ReadyServerAsync();
        await server.Client.OpenAsync(Uri, "x = 1\n");

        Assert.That(await server.Client.ErrorCodeOfAsync(method, parameters), Is.EqualTo(LspErrorCodes.InvalidParams));
        Assert.That(server.Log.ToString(), Does.Not.Contain("NullReferenceException"));
    }

    [Test]
    public async Task A_didChange_older_than_the_document_is_refused_and_logged()
    {
        await using var server = await ReadyServerAsync();
        var client = server.Client;
        await client.NotifyAsync("textDocument/didOpen", new DidOpenTextDocumentParams(new TextDocumentItem(Uri, "python", 10, "newer text")));

        await client.NotifyAsync("textDocument/didChange", new DidChangeTextDocumentParams(new VersionedTextDocumentIdentifier(Uri, 3), [new TextDocumentContentChangeEvent("older text")]));
        await client.NotifyAsync("textDocument/didChange", new DidChangeTextDocumentParams(new VersionedTextDocumentIdentifier(Uri, 10), [new TextDocumentContentChangeEvent("same version")]));
        await client.DebugStatsAsync();

        var document = server.Server.Context.Documents.Get(Uri);
        Assert.That((document.Version, document.Text), Is.EqualTo((10, "newer text")));
        Assert.That(server.Log.ToString(), Does.Contain("version 3").And.Contain("stale"));
    }

    [Test]
    public async Task A_didChange_of_500_edits_on_a_5_MB_line_applies_in_one_pass()
    {
        await using var server = await ReadyServerAsync();
        var client = server.Client;
        string line = new string('x', 5_000_000);
        await client.OpenAsync(Uri, line);
        // Bottom-up, as VS Code sends multi-cursor edits.
        var edits = Enumerable.Range(0, 500).Reverse().Select(i => new TextDocumentContentChangeEvent("y", new Range(new Position(0, i * 2), new Position(0, (i * 2) + 1)))).ToList();

        var clock = Stopwatch.StartNew();
        await client.NotifyAsync("textDocument/didChange", new DidChangeTextDocumentParams(new VersionedTextDocumentIdentifier(Uri, 100), edits));
        await client.DebugStatsAsync();
        TestContext.Out.WriteLine($"500 edits on a 5 MB line: {clock.ElapsedMilliseconds} ms until the next request was answered");

        string text = server.Server.Context.Documents.Get(Uri).Text;
        Assert.That(text[..6], Is.EqualTo("yxyxyx"));
        Assert.That(text, Has.Length.EqualTo(line.Length));
        // 0.2 s on an idle 2-core machine, 1.4 s with other suites running beside it; the edit-by-edit
        // application it replaces took 4.7 s idle (a line index and a 5 MB copy per edit).
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
    }
}
