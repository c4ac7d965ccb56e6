// The generate and tokenize commands on the shared fixtures: --json greedy ids equal the reference, only
// results reach stdout, --dump-logits writes the last prompt position's logits, and bad input is a
// one-line error with a non-zero exit.
using System.Text.Json;

namespace CodeLlamaLsp.Server.Tests.Cli;

public class GenerateCommandTests
{
    private static string Fixture(string name) => Path.GetFullPath(Path.Combine(ServerProcess.RepoRoot, "..", "shared", "fixtures", name));

    [Test]
    public async Task Several_prompts_run_through_one_generator_and_the_second_reuses_the_shared_prefix()
    {
        var reference = FirstReference("mini-4bit-g128-actorder", minPromptLength: 4);
        var edited = reference.Prompt[..^2].Append(7).ToArray();

        var (code, stdout, stderr) = await RunInProcessAsync(
            "--model", Fixture("mini-4bit-g128-actorder"), "--device", "cpu",
            "--prompt-ids", string.Join(",", reference.Prompt) + ";" + string.Join(",", edited),
            "--max-tokens", "4", "--temperature", "0", "--json");

        var results = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l)).ToList();
        var timings = stderr.Split('\n').Where(l => l.Contains("first token after", StringComparison.Ordinal)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero, stderr);
            Assert.That(results.Select(r => Ints(r.RootElement.GetProperty("prompt_ids"))), Is.EqualTo(new[] { reference.Prompt, edited }));
            Assert.That(Ints(results[0].RootElement.GetProperty("ids")), Is.EqualTo(reference.Greedy[..4]));
            Assert.That(timings, Has.Count.EqualTo(2));
            Assert.That(timings[1], Does.Contain($"({edited.Length - 1} from the prefix cache, 1 run)"));
        });
    }

    [Test]
    public async Task Json_output_of_a_greedy_run_equals_the_reference_ids()
    {
        var reference = FirstReference("mini-4bit-g128-actorder", minPromptLength: 2);
        var logitsFile = Path.GetTempFileName();
        try
        {
            var (code, stdout, stderr) = await RunInProcessAsync(
                "--model", Fixture("mini-4bit-g128-actorder"), "--device", "cpu", "--prompt-ids", string.Join(",", reference.Prompt),
                "--max-tokens", "32", "--temperature", "0", "--json", "--dump-logits", logitsFile);

            using var output = JsonDocument.Parse(stdout);
            var logits = JsonSerializer.Deserialize<float[]>(await File.ReadAllTextAsync(logitsFile))!;
            Assert.Multiple(() =>
            {
                Assert.That(code, Is.Zero, stderr);
                Assert.That(Ints(output.RootElement.GetProperty("prompt_ids")), Is.EqualTo(reference.Prompt));
                Assert.That(Ints(output.RootElement.GetProperty("ids")), Is.EqualTo(reference.Greedy));
                Assert.That(RelativeL2(logits, reference.LastLogits), Is.LessThan(1e-4));
                Assert.That(stderr, Does.Contain("32 tokens"), "progress and timing go to stderr");
            });
        }
        finally
        {
            File.Delete(logitsFile);
        }
    }

    [Test]
    public async Task Json_output_reports_draft_tokens_and_the_answer_is_the_same_with_speculative_off()
    {
        var reference = FirstReference("mini-4bit-g128-actorder", minPromptLength: 2);
        async Task<JsonElement> RunAsync(string speculative)
        {
            // A repetition penalty below 1 makes the random-weight model repeat itself, so drafts are accepted.
            var (code, stdout, stderr) = await RunInProcessAsync(
                "--model", Fixture("mini-4bit-g128-actorder"), "--device", "cpu", "--prompt-ids", string.Join(",", reference.Prompt),
                "--max-tokens", "32", "--temperature", "0", "--repetition-penalty", "0.5", "--speculative", speculative, "--json");
            Assert.That(code, Is.Zero, stderr);
            using var output = JsonDocument.Parse(stdout);
            return output.RootElement.Clone();
        }

        var on = await RunAsync("auto");
        var off = await RunAsync("off");

        Assert.Multiple(() =>
        {
            Assert.That(Ints(on.GetProperty("ids")), Is.EqualTo(Ints(off.GetProperty("ids"))));
            Assert.That(on.GetProperty("accepted_tokens").GetInt32(), Is.Positive);
            Assert.That(on.GetProperty("drafted_tokens").GetInt32(), Is.GreaterThanOrEqualTo(on.GetProperty("accepted_tokens").GetInt32()));
            Assert.That(off.GetProperty("drafted_tokens").GetInt32(), Is.Zero);
        });
    }

    [Test]
    public async Task The_executable_prints_only_the_json_object_on_stdout()
    {
        var reference = FirstReference("tiny-32k-4bit-g32", minPromptLength: 2);

        var (code, stdout) = await ServerProcess.RunToEndAsync(
            "generate", "--model", Fixture("tiny-32k-4bit-g32"), "--device=cpu", "--prompt-ids", string.Join(",", reference.Prompt),
            "--max-tokens", "8", "--temperature", "0", "--json");

        using var output = JsonDocument.Parse(stdout);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero);
            Assert.That(Ints(output.RootElement.GetProperty("ids")), Is.EqualTo(reference.Greedy[..8]));
            Assert.That(output.RootElement.GetProperty("text").GetString(), Is.Not.Empty);
        });
    }

    [Test]
    public async Task Prompt_text_is_encoded_with_bos()
    {
        var (code, stdout, stderr) = await RunInProcessAsync(
            "--model", Fixture("tiny-32k-4bit-g32"), "--device", "cpu", "--prompt", "def f(a, b):", "--max-tokens", "2", "--temperature", "0", "--json");
        var (tokenizeCode, ids, _) = await RunTokenizeAsync("--model", Fixture("tiny-32k-4bit-g32"), "def f(a, b):");

        using var output = JsonDocument.Parse(stdout);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero, stderr);
            Assert.That(tokenizeCode, Is.Zero);
            Assert.That(Ints(output.RootElement.GetProperty("prompt_ids")), Is.EqualTo(new[] { 1 }.Concat(JsonSerializer.Deserialize<int[]>(ids)!)));
        });
    }

    [Test]
    public async Task Tokenize_prints_the_sentencepiece_ids_without_bos()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(Fixture(Path.Combine("llama2-tokenizer", "golden.json"))));
        var deepIndent = golden.RootElement.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("text").GetString()!.Contains("\n" + new string(' ', 20), StringComparison.Ordinal));

        var (code, stdout, _) = await RunTokenizeAsync("--model", Fixture("tiny-32k-4bit-g32"), deepIndent.GetProperty("text").GetString()!);

        Assert.Multiple(() =>
        {
            Assert.That(code, Is.Zero);
            Assert.That(JsonSerializer.Deserialize<int[]>(stdout), Is.EqualTo(Ints(deepIndent.GetProperty("ids"))));
        });
    }

    [TestCase("--model", "/no/such/model", "--prompt-ids", "1", ExpectedResult = 1)]
    [TestCase("--prompt-ids", "1", ExpectedResult = 2)]
    [TestCase("--model", "M", "--prompt-ids", "1,x", ExpectedResult = 2)]
    [TestCase("--model", "M", "--prompt", "a", "--prompt-ids", "1", ExpectedResult = 2)]
    [TestCase("--model", "M", "--prompt-ids", "1", "--device", "tpu", ExpectedResult = 2)]
    [TestCase("--model", "M", "--prompt-ids", "1", "--bogus", ExpectedResult = 2)]
    [TestCase("--model", "M", "--prompt-ids", "1", "--speculative", "on", ExpectedResult = 2)]
    [TestCase("--model", "M", "--prompt", "a", "stray", ExpectedResult = 2)]
    public async Task<int> Bad_input_is_a_one_line_reason_and_a_non_zero_exit(params string[] args)
    {
        var (code, stdout, stderr) = await RunInProcessAsync(args);

        Assert.Multiple(() =>
        {
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith("codellama-lsp generate: ", StringComparison.Ordinal)), Is.EqualTo(1));
        });
        return code;
    }

    [Test]
    public async Task A_prompt_id_outside_the_vocabulary_is_an_error_naming_it()
    {
        var (code, _, stderr) = await RunInProcessAsync("--model", Fixture("mini-8bit-actorder"), "--device", "cpu", "--prompt-ids", "1,999");

        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stderr, Does.Contain("999").And.Contain("vocabulary"));
        });
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunInProcessAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await CodeLlamaLsp.Server.Cli.GenerateCommand.RunAsync(args, stdout, stderr, CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunTokenizeAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await CodeLlamaLsp.Server.Cli.TokenizeCommand.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static (int[] Prompt, int[] Greedy, float[] LastLogits) FirstReference(string fixture, int minPromptLength)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture(fixture), "reference.json")));
        var r = doc.RootElement.GetProperty("results").EnumerateArray().First(r => r.GetProperty("prompt").GetArrayLength() >= minPromptLength);
        return (Ints(r.GetProperty("prompt")), Ints(r.GetProperty("greedy")), r.GetProperty("last_logits").EnumerateArray().Select(v => v.GetSingle()).ToArray());
    }

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    private static double RelativeL2(float[] actual, float[] expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff += Math.Pow(actual[i] - expected[i], 2);
            norm += Math.Pow(expected[i], 2);
        }

        return Math.Sqrt(diff / norm);
    }
}
