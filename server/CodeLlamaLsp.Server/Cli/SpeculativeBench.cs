// The speculative-decoding rows of `codellama-lsp bench`, measured through IDecodingSession so they run on
// whatever engine the session wraps. A plain greedy run of a prompt gives the model's own answer, so drafts
// can be made to fare as wanted: taken from that answer, every draft token is accepted; with every other
// draft token corrupted, each verification keeps one draft token plus the model's own (half the answer comes
// from drafts); and prompt lookup over random prompt ids finds (almost) nothing, which must cost
// (almost) nothing over plain decode. Every run is checked against the plain answer, token for token: a run
// that departs from it ends there, and its row says where instead of giving a speed (on the GPU a batched
// pass may sum in another order than one row and flip a near-tie; the other rows are still measured).
using System.Diagnostics;
using System.Globalization;
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Server.Cli;

internal static class SpeculativeBench
{
    /// <summary>The draft length for the full and half acceptance rows.</summary>
    public const int DraftLength = 8;

    /// <summary>Prompt length of the rows: random ids, so prompt lookup finds (almost) nothing in them.</summary>
    public const int PromptTokens = 512;

    /// <summary>
    /// `bench --device cpu`: only these rows, on the CPU engine (InferenceSession), for checkpoints small enough to run
    /// there (the fixtures); writes them as bench does and returns the exit code.
    /// </summary>
    public static int RunOnCpu(string model, int answerTokens, int repeats)
    {
        try
        {
            using var generator = EngineFactory.Create(ModelLoader.Load(model), DeviceKind.Cpu, contextLength: 0, Console.Error.WriteLine);
            var random = new Random(1);
            int vocab = generator.Config.VocabSize;
            int promptTokens = Math.Min(PromptTokens, generator.Session.ContextLength - answerTokens - DraftLength);
            int[] prompt = [.. Enumerable.Range(0, promptTokens).Select(_ => random.Next(3, vocab))];
            Console.WriteLine("| measure | value |");
            Console.WriteLine("|---|---|");
            foreach (var (what, value) in Measure(generator.Session, prompt, answerTokens, repeats))
            {
                Console.WriteLine($"| {what} | {value} |");
            }

            return 0;
        }
        catch (Exception e) when (e is ModelLoadException or InvalidOperationException or ArgumentException or IOException)
        {
            Console.Error.WriteLine($"codellama-lsp bench: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Decodes <paramref name="answerTokens"/> greedy tokens after <paramref name="prompt"/> plainly and speculatively,
    /// medians of <paramref name="repeats"/>; returns bench rows (what, value). Decode time excludes the prefill. A
    /// speculative row whose answer differs from the plain one says where ("differs from plain decoding at ...").
    /// </summary>
    public static IReadOnlyList<(string What, string Value)> Measure(IDecodingSession session, int[] prompt, int answerTokens, int repeats)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfLessThan(answerTokens, 2);
        int[] answer = Plain(session, prompt, answerTokens, out _); // warm-up: the first run pays for JIT and caches
        double plain = Median(repeats, () =>
        {
            answer = Plain(session, prompt, answerTokens, out double seconds);
            return seconds;
        });
        int vocab = session.Config.VocabSize;
        var rows = new List<(string What, string Value)> { ("speculative: plain greedy decode", Rate(answer, plain, plain)) };

        var full = Verified(session, prompt, answer, repeats, (token, _) => token);
        rows.Add(($"speculative: {DraftLength}-token drafts, all from the plain answer", Rate(answer, full, plain)));

        var half = Verified(session, prompt, answer, repeats, (token, j) => j % 2 == 1 ? (token + 1) % vocab : token);
        rows.Add(($"speculative: {DraftLength}-token drafts, every other token corrupted", Rate(answer, half, plain)));

        var lookup = PromptLookup(session, prompt, answer, repeats);
        rows.Add(("speculative: prompt lookup over a random prompt (few matches)", Rate(answer, lookup, plain)));
        return rows;
    }

    private static int[] Plain(IDecodingSession session, int[] prompt, int answerTokens, out double seconds)
    {
        var answer = new int[answerTokens];
        answer[0] = session.BeginGeneration(prompt, GenerationOptions.Greedy(answerTokens), CancellationToken.None);
        var clock = Stopwatch.StartNew();
        for (int i = 1; i < answerTokens; i++)
        {
            answer[i] = session.Advance(answer[i - 1]);
        }

        seconds = clock.Elapsed.TotalSeconds;
        return answer;
    }

    /// <summary>Verifies drafts made from the plain answer by <paramref name="draftToken"/>(answer token, index in draft).</summary>
    private static Outcome Verified(IDecodingSession session, int[] prompt, int[] answer, int repeats, Func<int, int, int> draftToken)
    {
        Outcome last = default;
        double seconds = Median(repeats, () =>
        {
            int produced = 0, drafted = 0, accepted = 0, passes = 0;
            string? mismatch = Begin(session, prompt, answer, ref produced);
            var clock = Stopwatch.StartNew();
            while (mismatch == null && produced < answer.Length)
            {
                // The step returns up to draft + 1 ids: never more than the answer still has.
                var draft = new int[Math.Min(DraftLength, answer.Length - produced - 1)];
                for (int j = 0; j < draft.Length; j++)
                {
                    draft[j] = draftToken(answer[produced + j], j);
                }

                var ids = session.AdvanceWithDraft(answer[produced - 1], draft);
                mismatch = Check(ids, answer, ref produced);
                drafted += draft.Length;
                accepted += ids.Count - 1;
                passes++;
            }

            last = new Outcome(0, drafted, accepted, passes, mismatch);
            return clock.Elapsed.TotalSeconds;
        });
        return last with { Seconds = seconds };
    }

    /// <summary>The generator's own path: PromptLookupDrafter drafts (or not) at every step.</summary>
    private static Outcome PromptLookup(IDecodingSession session, int[] prompt, int[] answer, int repeats)
    {
        Outcome last = default;
        double seconds = Median(repeats, () =>
        {
            int produced = 0, passes = 0;
            var drafter = new PromptLookupDrafter(prompt);
            string? mismatch = Begin(session, prompt, answer, ref produced);
            var clock = Stopwatch.StartNew();
            while (mismatch == null && produced < answer.Length)
            {
                int token = answer[produced - 1];
                drafter.Append(token);
                var ids = drafter.Advance(session, token, answer.Length - produced - 1);
                for (int k = 0; k < ids.Count - 1; k++)
                {
                    drafter.Append(ids[k]);
                }

                mismatch = Check(ids, answer, ref produced);
                passes++;
            }

            last = new Outcome(0, drafter.Drafted, drafter.Accepted, passes, mismatch);
            return clock.Elapsed.TotalSeconds;
        });
        return last with { Seconds = seconds };
    }

    /// <summary>Begins the generation (prefill from the prefix cache, not timed) and checks its first id.</summary>
    private static string? Begin(IDecodingSession session, int[] prompt, int[] answer, ref int produced)
    {
        int first = session.BeginGeneration(prompt, GenerationOptions.Greedy(answer.Length), CancellationToken.None);
        return Check([first], answer, ref produced);
    }

    /// <summary>
    /// Checks that <paramref name="ids"/> continue the plain answer at <paramref name="produced"/>, advancing it; returns
    /// null, or where and how the speculative answer departs from the plain one.
    /// </summary>
    private static string? Check(IReadOnlyList<int> ids, int[] answer, ref int produced)
    {
        foreach (int id in ids)
        {
            if (id != answer[produced])
            {
                return $"differs from plain decoding at answer position {produced}: id {id}, plain greedy {answer[produced]}";
            }

            produced++;
        }

        return null;
    }

    private static string Rate(int[] answer, double seconds, double plainSeconds)
    {
        int decoded = answer.Length - 1;
        return string.Create(CultureInfo.InvariantCulture, $"{decoded / seconds:F1} tok/s ({plainSeconds / seconds:F2}x plain)");
    }

    private static string Rate(int[] answer, Outcome run, double plainSeconds)
    {
        if (run.Mismatch != null)
        {
            return $"{run.Mismatch} ({run.Accepted} of {run.Drafted} draft tokens accepted before it)";
        }

        int decoded = answer.Length - 1;
        return string.Create(CultureInfo.InvariantCulture, $"{Rate(answer, run.Seconds, plainSeconds)}; {run.Accepted} of {run.Drafted} draft tokens accepted, {(double)decoded / run.Passes:F2} tokens per pass");
    }

    private static double Median(int repeats, Func<double> run) => BenchCommand.Median(Enumerable.Range(0, Math.Max(1, repeats)).Select(_ => run()).ToList());

    private readonly record struct Outcome(double Seconds, int Drafted, int Accepted, int Passes, string? Mismatch);
}
