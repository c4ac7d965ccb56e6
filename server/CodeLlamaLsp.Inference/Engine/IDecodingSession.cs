// The seam between InProcessGenerator and an engine: one sequence with its KV cache and prefix cache,
// prefilled from a prompt and advanced one token at a time, with token selection inside the session.
// InferenceSession implements it over LlamaModel on the CPU (logits come to the host and Sampler picks);
// CudaDecodingSession over a CudaModel (fused forward pass, selection on the GPU, only the chosen id comes back).
// EngineFactory picks the implementation for the backend; the generator's loop (stop ids and strings,
// context full, cancellation between tokens, streaming text) is the same for both. AdvanceWithDraft is
// speculative decoding's verification step: both sessions verify a draft in one forward pass of 1 + draft rows;
// the interface's default runs it token by token (exact, and what a session without a batched pass gets).
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>One sequence being generated on a model. Not thread-safe: one call at a time.</summary>
public interface IDecodingSession : IDisposable
{
    /// <summary>The model's configuration.</summary>
    LlamaConfig Config { get; }

    /// <summary>Where it runs, for logs ("cpu", "cuda: NVIDIA H100 ...").</summary>
    string DeviceName { get; }

    /// <summary>Positions the session can hold (prompt plus answer).</summary>
    int ContextLength { get; }

    /// <summary>
    /// Prompt tokens this engine prefills, cold, with a first answer in about a second (a newly opened file's first
    /// suggestion), where it knows; null leaves the prompt library's default. The server caps prompts there unless
    /// <c>maxPromptTokens</c> is set.
    /// </summary>
    int? PromptBudget => null;

    /// <summary>The next position to be written: the number of tokens the cache holds.</summary>
    int Position { get; }

    /// <summary>The tokens whose keys and values the cache holds.</summary>
    IReadOnlyList<int> CachedTokens { get; }

    /// <summary>Prompt tokens the last prefill took from the prefix cache.</summary>
    int LastReusedTokens { get; }

    /// <summary>Prompt tokens the last prefill ran through the model.</summary>
    int LastProcessedTokens { get; }

    /// <summary>
    /// Makes the cache hold exactly <paramref name="prompt"/>, reusing the longest prefix already cached (the last
    /// prompt token is always recomputed), and returns the logits [vocab] at the last prompt position. Cancellation
    /// is checked between batches; the cache then holds the part processed so far.
    /// </summary>
    float[] Prefill(IReadOnlyList<int> prompt, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a generation: prefills <paramref name="prompt"/> as <see cref="Prefill"/> does and returns the first
    /// answer id chosen under <paramref name="options"/> (temperature, top-k, top-p, repetition penalty over the prompt
    /// and the answer, seed), with Sampler's semantics. Throws ArgumentOutOfRangeException for invalid options.
    /// </summary>
    int BeginGeneration(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken);

    /// <summary>
    /// Appends <paramref name="token"/> (normally the id just returned) at <see cref="Position"/> and returns the next
    /// id chosen under the options of the last <see cref="BeginGeneration"/>. Throws InvalidOperationException when
    /// the context is full or no generation was begun.
    /// </summary>
    int Advance(int token);

    /// <summary>
    /// Speculative decoding's verification step. Appends <paramref name="token"/> (as <see cref="Advance"/> does)
    /// followed by <paramref name="draft"/>, chooses the model's id at each of those positions under the options of
    /// the last <see cref="BeginGeneration"/> (the repetition penalty sees the context as it is at that position),
    /// keeps the draft tokens while the model's choice equals them, and forgets the cache positions of the rejected
    /// ones. Returns the accepted draft tokens followed by the model's own next id: 1 to draft.Length + 1 ids, the
    /// same ids that <see cref="Advance"/> would have returned one call at a time. The cache must have room for
    /// 1 + draft.Length positions; throws InvalidOperationException otherwise.
    /// </summary>
    /// <remarks>
    /// With sampling this is standard speculative sampling for a deterministic draft: a draft that proposes x with
    /// certainty (q = a point mass) is accepted with probability min(1, p(x) / q(x)) = p(x), and after a rejection
    /// the next id is drawn from normalize(max(0, p - q)) = p without x. Drawing y ~ p and accepting when y == x does
    /// both at once (y == x has probability p(x); otherwise y is distributed as p restricted to the other ids), so
    /// the answer's distribution is the model's own. With the session's seeded draws taken in position order it is
    /// even the same answer, draw for draw.
    /// </remarks>
    IReadOnlyList<int> AdvanceWithDraft(int token, ReadOnlySpan<int> draft)
    {
        // The exact fallback: one Advance per position, stopping at the first disagreement.
        int[] rows = [token, .. draft];
        return DraftAcceptance.KeepAgreeingPrefix(draft, row => Advance(rows[row]));
    }

    /// <summary>Forgets the cached tokens.</summary>
    void Reset();
}
