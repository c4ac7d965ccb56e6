// The one generation interface that the language server talks to. The in-process engine (CPU or CUDA)
// and the remote backend (OpenAI-compatible HTTP) both implement it, so nothing above this line changes
// when a team moves generation to a shared GPU server.
namespace CodeLlamaLsp.Inference.Generation;

/// <summary>Generates text for one prompt at a time, streaming the answer as it is produced.</summary>
public interface ITextGenerator
{
    /// <summary>What the prompt builder needs to know about the model behind this generator.</summary>
    ModelInfo Info { get; }

    /// <summary>
    /// Streams the answer. Each chunk carries the new text (never half a UTF-8 character) and the ids that
    /// produced it; the last chunk carries <see cref="GenerationChunk.Finished"/>. Cancelling the token stops
    /// generation between tokens; the enumeration then ends with <see cref="StopReason.Cancelled"/> or throws
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    IAsyncEnumerable<GenerationChunk> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken);
}

/// <summary>Facts about the loaded model that shape prompts: its window, vocabulary and infilling support.</summary>
/// <param name="Name">Display name (model folder, id or remote model name).</param>
/// <param name="ContextLength">Tokens the engine can hold (prompt plus answer).</param>
/// <param name="VocabSize">Vocabulary size; 32016 means the CodeLlama infilling tokens exist.</param>
/// <param name="SupportsInfill">True when the checkpoint has the PSM infilling tokens (7B/13B).</param>
public sealed record ModelInfo(string Name, int ContextLength, int VocabSize, bool SupportsInfill)
{
    /// <summary>
    /// Prompt tokens the engine prefills, cold, with a first answer in about a second, where it knows (the in-process
    /// CUDA engine); null otherwise. The server caps prompts there unless the user set <c>maxPromptTokens</c>.
    /// </summary>
    public int? PromptBudget { get; init; }
}

/// <summary>One prompt and how to sample its answer.</summary>
/// <param name="PromptIds">Token ids, BOS included where the template wants it. The in-process engine uses these.</param>
/// <param name="PromptText">The same prompt as text, for backends that take text (remote servers).</param>
/// <param name="Options">Sampling and stopping.</param>
public sealed record GenerationRequest(IReadOnlyList<int> PromptIds, string PromptText, GenerationOptions Options);

/// <summary>Sampling and stopping rules. Defaults are the seed model's (FACTS.md); temperature 0 means greedy.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 512;
    public float Temperature { get; init; } = 0.7f;
    public int TopK { get; init; } = 40;
    public float TopP { get; init; } = 0.95f;
    public float RepetitionPenalty { get; init; } = 1.1f;
    public int? Seed { get; init; }
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>
    /// Whether the in-process engine may draft tokens from the prompt and verify them in one forward pass
    /// (InProcessGenerator, PromptLookupDrafter). The answer is the same either way; remote engines ignore it
    /// (they have their own server-side option, docs/scaling.md).
    /// </summary>
    public SpeculativeMode Speculative { get; init; } = SpeculativeMode.Auto;

    /// <summary>Greedy decoding with no penalty: deterministic, what tests and references use.</summary>
    public static GenerationOptions Greedy(int maxNewTokens) =>
        new() { MaxNewTokens = maxNewTokens, Temperature = 0f, TopK = 0, TopP = 1f, RepetitionPenalty = 1f };
}

/// <summary>Speculative decoding from the prompt: <c>auto</c> drafts where the engine can, <c>off</c> never does.</summary>
public enum SpeculativeMode
{
    Auto,
    Off,
}

/// <summary>A piece of the answer as it streams out.</summary>
/// <param name="Text">New text since the previous chunk (may be empty while bytes of a character are held back).</param>
/// <param name="TokenIds">Ids generated since the previous chunk (empty for remote backends that do not report ids).</param>
/// <param name="Finished">Set on the last chunk only.</param>
public sealed record GenerationChunk(string Text, IReadOnlyList<int> TokenIds, StopReason? Finished = null)
{
    /// <summary>Draft tokens the engine verified since the previous chunk (speculative decoding; 0 without it).</summary>
    public int DraftedTokens { get; init; }

    /// <summary>Of <see cref="DraftedTokens"/>, those the model agreed with.</summary>
    public int AcceptedTokens { get; init; }
}

/// <summary>Why generation ended.</summary>
public enum StopReason
{
    MaxTokens,
    StopToken,
    StopString,
    ContextFull,
    Cancelled,
}

/// <summary>Helpers for callers that want the whole answer rather than the stream.</summary>
public static class TextGeneratorExtensions
{
    /// <summary>Collects the streamed chunks into one result.</summary>
    public static async Task<GenerationResult> GenerateAllAsync(this ITextGenerator generator, GenerationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var text = new System.Text.StringBuilder();
        var ids = new List<int>();
        StopReason reason = StopReason.MaxTokens;
        int drafted = 0, accepted = 0;
        await foreach (var chunk in generator.GenerateAsync(request, cancellationToken).ConfigureAwait(false))
        {
            text.Append(chunk.Text);
            ids.AddRange(chunk.TokenIds);
            drafted += chunk.DraftedTokens;
            accepted += chunk.AcceptedTokens;
            if (chunk.Finished is { } finished)
            {
                reason = finished;
            }
        }

        return new GenerationResult(text.ToString(), ids, reason) { DraftedTokens = drafted, AcceptedTokens = accepted };
    }
}

/// <summary>A whole answer.</summary>
public sealed record GenerationResult(string Text, IReadOnlyList<int> TokenIds, StopReason StopReason)
{
    /// <summary>Draft tokens verified over the whole answer (see <see cref="GenerationChunk.DraftedTokens"/>).</summary>
    public int DraftedTokens { get; init; }

    /// <summary>Of <see cref="DraftedTokens"/>, those the model agreed with.</summary>
    public int AcceptedTokens { get; init; }
}
