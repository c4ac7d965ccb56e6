// `codellama-lsp generate`: loads a model, runs one prompt and prints the answer (or, with --json, the
// prompt ids, answer ids and text as one object). Scripts, benchmarks and tests use it to check the engine
// against reference outputs without an editor. --prompt-ids may hold several prompts separated by ';',
// run one after another through the same generator (the server's path, prefix cache included), each with
// a timing line on stderr: prompt tokens reused and run, time to first token, decode rate, and the draft
// tokens speculative decoding verified and accepted (also in --json).
using System.Globalization;
using System.Text.Json;
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Server.Cli;

internal static class GenerateCommand
{
    public const string Usage =
        "usage: codellama-lsp generate --model M (--prompt TEXT | --prompt-ids 1,2,3[;1,2,4...]) [OPTIONS]\n" +
        "Runs each prompt and prints the answer; timings and logs go to stderr.\n" +
        EngineFlags.Help +
        "  --prompt TEXT             the prompt as text (BOS is added)\n" +
        "  --prompt-ids IDS          token ids; several prompts separated by ';' run through one generator\n" +
        "  --json                    one JSON object per prompt: prompt_ids, ids, text, stop_reason,\n" +
        "                            drafted_tokens, accepted_tokens (speculative decoding)\n" +
        "  --dump-logits FILE        write the first prompt's last logits as JSON\n" +
        "  --log-level debug         stack traces with failures\n";

    /// <summary>
    /// The CLI's sampling defaults: the seed's (GenerationOptions) except the repetition penalty, which is off
    /// (1, as in transformers) so that --temperature 0 alone is greedy and matches reference ids.
    /// </summary>
    internal static readonly GenerationOptions Defaults = new() { RepetitionPenalty = 1f };

    /// <summary>Runs the command; results go to <paramref name="stdout"/>, logs and the one-line error to <paramref name="stderr"/>.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var flags = new EngineFlags();
        string? promptText = null;
        List<int[]>? promptIds = null;
        bool json = false;
        string? dumpLogits = null;
        bool debug = false;
        try
        {
            EngineFlags.Parse(args, flags, (name, value) =>
            {
                switch (name)
                {
                    case "--prompt":
                        promptText = value();
                        break;
                    case "--prompt-ids":
                        promptIds = value().Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseIds).ToList();
                        break;
                    case "--json":
                        json = true;
                        break;
                    case "--dump-logits":
                        dumpLogits = value();
                        break;
                    case "--log-level":
                        debug = CommandLine.IsDebug(value());
                        break;
                    default:
                        throw new CommandLineException($"unknown option '{name}'.");
                }
            },
            positional: text => throw new CommandLineException($"unexpected argument '{text}' (the prompt goes after --prompt)."));
            if (flags.Model == null)
            {
                throw new CommandLineException("--model is required.");
            }

            if ((promptText == null) == (promptIds == null))
            {
                throw new CommandLineException("give exactly one of --prompt TEXT and --prompt-ids 1,2,3.");
            }
        }
        catch (CommandLineException e)
        {
            await stderr.WriteLineAsync(CommandLine.UsageError("generate", e.Message)).ConfigureAwait(false);
            return 2;
        }

        try
        {
            using var generator = LoadGenerator(flags, stderr);
            var prompts = promptIds ?? [EncodeWithBos(generator, promptText!)];
            if (prompts.Count == 0)
            {
                throw new CommandLineException("--prompt-ids needs at least one id, like 1,2,3.");
            }

            if (dumpLogits != null)
            {
                var logits = await Task.Run(() => generator.Session.Prefill(prompts[0], cancellationToken), cancellationToken).ConfigureAwait(false);
                await File.WriteAllTextAsync(dumpLogits, JsonSerializer.Serialize(logits), cancellationToken).ConfigureAwait(false);
            }

            var options = flags.ToGenerationOptions(Defaults);
            foreach (var ids in prompts)
            {
                await GenerateOneAsync(generator, ids, promptText ?? string.Empty, options, json, prompts.Count > 1, stdout, stderr, cancellationToken).ConfigureAwait(false);
            }

            return 0;
        }
        catch (Exception e) when (e is ModelLoadException or ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or InvalidDataException or CommandLineException)
        {
            await stderr.WriteLineAsync(CommandLine.Failure("generate", e, debug)).ConfigureAwait(false);
            return 1;
        }
    }

    private static async Task GenerateOneAsync(InProcessGenerator generator, int[] ids, string promptText, GenerationOptions options, bool json, bool several, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var request = new GenerationRequest(ids, promptText, options);
        var text = new System.Text.StringBuilder();
        var answerIds = new List<int>();
        StopReason reason = StopReason.MaxTokens;
        int drafted = 0, accepted = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double firstToken = 0;
        await foreach (var chunk in generator.GenerateAsync(request, cancellationToken).ConfigureAwait(false))
        {
            if (answerIds.Count == 0 && chunk.TokenIds.Count > 0)
            {
                firstToken = clock.Elapsed.TotalSeconds;
            }

            text.Append(chunk.Text);
            answerIds.AddRange(chunk.TokenIds);
            drafted += chunk.DraftedTokens;
            accepted += chunk.AcceptedTokens;
            reason = chunk.Finished ?? reason;
            if (!json)
            {
                await stdout.WriteAsync(chunk.Text).ConfigureAwait(false);
                await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        double total = clock.Elapsed.TotalSeconds;
        string decode = answerIds.Count > 1 ? string.Create(CultureInfo.InvariantCulture, $", decode {(answerIds.Count - 1) / (total - firstToken):F1} tok/s") : string.Empty;
        await stderr.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{answerIds.Count} tokens in {total:F2} s, stopped: {reason}; prompt {ids.Length} tokens ({generator.Session.LastReusedTokens} from the prefix cache, {generator.Session.LastProcessedTokens} run), first token after {firstToken:F3} s{decode}; {accepted} of {drafted} draft tokens accepted")).ConfigureAwait(false);
        await stdout.WriteLineAsync(json ? ToJson(ids, answerIds, text.ToString(), reason, drafted, accepted) : (several ? Environment.NewLine : string.Empty)).ConfigureAwait(false);
    }

    /// <summary>Loads the checkpoint and builds the generator, logging to stderr.</summary>
    internal static InProcessGenerator LoadGenerator(EngineFlags flags, TextWriter stderr)
    {
        var loaded = ModelLoader.Load(flags.Model!, flags.Revision, new StageLogger(stderr));
        try
        {
            return EngineFactory.Create(loaded, flags.Device, flags.ContextSize, stderr.WriteLine);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    private static int[] EncodeWithBos(InProcessGenerator generator, string text)
    {
        var tokenizer = generator.Tokenizer ?? throw new CommandLineException($"model '{generator.Info.Name}' has no tokenizer.model; use --prompt-ids.");
        return [tokenizer.BosId, .. tokenizer.Encode(text)];
    }

    private static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            throw new CommandLineException("--prompt-ids needs at least one id, like 1,2,3.");
        }

        return parts.Select(p => EngineFlags.Int("--prompt-ids", p, min: 0)).ToArray();
    }

    private static string ToJson(IReadOnlyList<int> promptIds, IReadOnlyList<int> ids, string text, StopReason reason, int drafted, int accepted)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            WriteIds(writer, "prompt_ids", promptIds);
            WriteIds(writer, "ids", ids);
            writer.WriteString("text", text);
            writer.WriteString("stop_reason", reason.ToString());
            writer.WriteNumber("drafted_tokens", drafted);
            writer.WriteNumber("accepted_tokens", accepted);
            writer.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteIds(Utf8JsonWriter writer, string name, IReadOnlyList<int> ids)
    {
        writer.WriteStartArray(name);
        foreach (var id in ids)
        {
            writer.WriteNumberValue(id);
        }

        writer.WriteEndArray();
    }

    /// <summary>Logs each new loading stage once (not every tensor) to stderr.</summary>
    private sealed class StageLogger(TextWriter stderr) : IProgress<LoadProgress>
    {
        private string? _stage;

        public void Report(LoadProgress value)
        {
            if (value.Stage != _stage)
            {
                _stage = value.Stage;
                stderr.WriteLine($"loading: {value.Stage}");
            }
        }
    }
}
