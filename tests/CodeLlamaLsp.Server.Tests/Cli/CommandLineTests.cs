// What users expect from the command line (issue 15): --help on stdout with exit 0 for every command,
// `--` ending the options, `--temperature 0` alone being greedy, and expected failures as one line
// whose stack trace appears only at --log-level debug.
using System.Text.Json;

namespace CodeLlamaLsp.Server.Tests.Cli;

public class CommandLineTests
{
    private static string TinyFixture => Path.GetFullPath(Path.Combine(ServerProcess.RepoRoot, "..", "shared", "fixtures", "tiny-32k-4bit-g32"));

    [TestCase(new[] { "--help" }, "generate", TestName = "codellama-lsp --help lists the commands")]
    [TestCase(new string[0], "tokenize", TestName = "codellama-lsp alone prints the same help")]
    [TestCase(new[] { "generate", "--help" }, "--repetition-penalty", TestName = "generate --help prints every option")]
    [TestCase(new[] { "help", "generate" }, "--repetition-penalty", TestName = "help generate prints generate's usage")]
    [TestCase(new[] { "tokenize", "--help" }, "ends the options", TestName = "tokenize --help prints every option")]
    [TestCase(new[] { "--stdio", "--help" }, "--allow-insecure-http", TestName = "--stdio --help prints the server's flags")]
    [TestCase(new[] { "make-checkpoint", "-h" }, "--act-order", TestName = "make-checkpoint -h prints every option")]
    [TestCase(new[] { "bench", "--help" }, "--decode-tokens", TestName = "bench --help prints every option")]
    public async Task Help_goes_to_stdout_and_exits_zero(string[] args, string expected)
    {
        var (code, stdout, stderr) = await RunAsync(args);

        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero, stderr);
            Assert.That(stdout, Does.StartWith("usage: codellama-lsp").And.Contain(expected));
            Assert.That(stderr, Is.Empty);
        });
    }

    [Test]
    public async Task Double_dash_ends_the_options_so_text_may_start_with_a_dash()
    {
        var (code, stdout, stderr) = await RunAsync("tokenize", "--model", TinyFixture, "--", "---");
        var (helpCode, helpIds, _) = await RunAsync("tokenize", "--model", TinyFixture, "--", "--help");

        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero, stderr);
            Assert.That(JsonSerializer.Deserialize<int[]>(stdout), Is.Not.Empty);
            Assert.That(helpCode, Is.Zero, "after --, --help is text to tokenize");
            Assert.That(JsonSerializer.Deserialize<int[]>(helpIds), Is.Not.Empty);
        });
    }

    [Test]
    public async Task Temperature_zero_alone_is_greedy_and_gives_every_reference_answer()
    {
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyFixture, "reference.json")));
        foreach (var result in reference.RootElement.GetProperty("results").EnumerateArray())
        {
            int[] prompt = Ints(result.GetProperty("prompt"));
            int[] greedy = Ints(result.GetProperty("greedy"));
            using var stdout = new StringWriter();
            using var stderr = new StringWriter();

            int code = await CodeLlamaLsp.Server.Cli.GenerateCommand.RunAsync(
                ["--model", TinyFixture, "--device", "cpu", "--prompt-ids", string.Join(",", prompt), "--max-tokens", greedy.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "--temperature", "0", "--json"],
                stdout,
                stderr,
                CancellationToken.None);

            using var output = JsonDocument.Parse(stdout.ToString());
            Assert.That(code, Is.Zero, stderr.ToString());
            Assert.That(Ints(output.RootElement.GetProperty("ids")), Is.EqualTo(greedy), $"prompt {string.Join(",", prompt)}");
        }
    }

    [Test]
    public async Task A_missing_model_is_one_line_and_the_stack_trace_waits_for_debug()
    {
        var (code, stdout, stderr) = await RunAsync("tokenize", "--model", "/nonexistent/model", "x");
        var (debugCode, _, debugStderr) = await RunAsync("tokenize", "--model", "/nonexistent/model", "--log-level", "debug", "x");

        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1));
            Assert.That(stderr, Does.StartWith("codellama-lsp tokenize: ").And.Contain("/nonexistent/model"));
            Assert.That(debugCode, Is.EqualTo(1));
            Assert.That(debugStderr, Does.Contain("   at "), "--log-level debug adds the stack trace");
        });
    }

    [TestCase("generate", "--model", "M", "--prompt", "x", "--bogus")]
    [TestCase("tokenize", "--model", "M", "--bogus", "x")]
    [TestCase("make-checkpoint", "--bogus")]
    public async Task A_bad_flag_is_one_line_that_points_at_help(params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(args);

        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr.Trim(), Is.EqualTo($"codellama-lsp {args[0]}: unknown option '--bogus'. Run 'codellama-lsp {args[0]} --help' for the usage."));
        });
    }

    /// <summary>Runs the real executable (what users run) to the end.</summary>
    private static Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args) => ServerProcess.RunWithStderrAsync(args);

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(v => v.GetInt32()).ToArray();
}
