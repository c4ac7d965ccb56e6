// The mutable half of the engine: a KV cache sized for the context, scratch buffers and the position,
// with the prefix cache: a new prompt reuses the keys and values of the longest token prefix it shares
// with what the cache holds, so successive completions in one file prefill only what changed. As an
// IDecodingSession (the CPU engine's) it downloads each step's logits and picks the next
// token on the host with Sampler; a speculative draft is verified in one forward pass over all its rows.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Sampling;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>One sequence being evaluated on a <see cref="LlamaModel"/>. Not thread-safe.</summary>
public sealed class InferenceSession : IDecodingSession
{
    /// <summary>Default number of prompt tokens per forward call during prefill.</summary>
    public const int DefaultMaxBatchTokens = 256;

    private readonly LlamaModel _model;
    private readonly ForwardBuffers _buffers;
    private readonly KvCache _cache;
    private Sampler? _sampler;
    private List<int> _context = []; // what the repetition penalty sees: prompt and answer so far
    private float[] _draftLogits = []; // [1 + draft, vocab] of a verification, reused by the next one

    public InferenceSession(LlamaModel model, int contextLength, int maxBatchTokens = DefaultMaxBatchTokens)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchTokens, 1);
        _model = model;
        var c = model.Config;
        _cache = new KvCache(model.Backend.AllocateKvCache(c.NumLayers, c.NumKvHeads, c.HeadDim, contextLength));
        _buffers = new ForwardBuffers(model.Backend, c, Math.Min(maxBatchTokens, contextLength));
    }

    public LlamaModel Model => _model;

    public LlamaConfig Config => _model.Config;

    public string DeviceName => _model.Backend.Name;

    /// <summary>Positions the session can hold (prompt plus answer).</summary>
    public int ContextLength => _cache.Capacity;

    /// <summary>The next position to be written: the number of tokens the cache holds.</summary>
    public int Position => _cache.Length;

    /// <summary>The tokens whose keys and values the cache holds.</summary>
    public IReadOnlyList<int> CachedTokens => _cache.Tokens;

    /// <summary>Prompt tokens the last <see cref="Prefill"/> took from the prefix cache.</summary>
    public int LastReusedTokens { get; private set; }

    /// <summary>Prompt tokens the last <see cref="Prefill"/> ran through the model.</summary>
    public int LastProcessedTokens { get; private set; }

    /// <summary>
    /// Makes the cache hold exactly <paramref name="prompt"/>, reusing the longest prefix already cached, and
    /// returns the logits [vocab] at the last prompt position. Cancellation is checked between batches; the
    /// cache then holds the part processed so far.
    /// </summary>
    public float[] Prefill(IReadOnlyList<int> prompt, CancellationToken cancellationToken = default)
    {
        int reuse = _cache.RewindToSharedPrefix(prompt, _model.Config.VocabSize);
        LastReusedTokens = reuse;
        LastProcessedTokens = prompt.Count - reuse;

        var ids = prompt.ToArray();
        var logits = new float[_model.Config.VocabSize];
        for (int start = reuse; start < ids.Length; start += _buffers.MaxRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = ids.AsSpan(start, Math.Min(_buffers.MaxRows, ids.Length - start));
            LlamaForward.Forward(_model, _buffers, _cache.Storage, chunk, start, logits, allRows: false);
            _cache.Append(chunk);
        }

        return logits;
    }

    /// <summary>
    /// Evaluates <paramref name="prompt"/> from position 0 (ignoring the prefix cache) and returns the logits at
    /// every position, row-major [prompt.Count, vocab]. For tests and --dump-logits.
    /// </summary>
    public float[] EvaluateAllPositions(IReadOnlyList<int> prompt)
    {
        _cache.CheckPrompt(prompt, _model.Config.VocabSize);
        _cache.Truncate(0);
        LastReusedTokens = 0;
        LastProcessedTokens = prompt.Count;
        int vocab = _model.Config.VocabSize;
        var ids = prompt.ToArray();
        var logits = new float[(long)ids.Length * vocab];
        for (int start = 0; start < ids.Length; start += _buffers.MaxRows)
        {
            var chunk = ids.AsSpan(start, Math.Min(_buffers.MaxRows, ids.Length - start));
            LlamaForward.Forward(_model, _buffers, _cache.Storage, chunk, start, logits.AsSpan(start * vocab), allRows: true);
            _cache.Append(chunk);
        }

        return logits;
    }

    /// <summary>Appends one token at <see cref="Position"/> and returns the logits [vocab] for the next one.</summary>
    public float[] Decode(int token)
    {
        if (Position >= ContextLength)
        {
            throw new InvalidOperationException($"The context of {ContextLength} tokens is full.");
        }

        var logits = new float[_model.Config.VocabSize];
        ReadOnlySpan<int> one = [token];
        LlamaForward.Forward(_model, _buffers, _cache.Storage, one, Position, logits, allRows: false);
        _cache.Append(one);
        return logits;
    }

    public int BeginGeneration(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        var sampler = new Sampler(options);
        var logits = Prefill(prompt, cancellationToken);
        _sampler = sampler;
        _context = [.. prompt];
        return sampler.Sample(logits, _context);
    }

    public int Advance(int token)
    {
        var sampler = _sampler ?? throw new InvalidOperationException("Advance needs a generation begun with BeginGeneration.");
        var logits = Decode(token);
        _context.Add(token);
        return sampler.Sample(logits, _context);
    }

    /// <summary>
    /// <see cref="IDecodingSession.AdvanceWithDraft"/> in one forward pass of 1 + draft.Length rows. On the CPU backend
    /// each row's logits are bit for bit those of a one-row step (its ops compute every row alone, in the same order),
    /// and the sampler draws position by position as <see cref="Advance"/> would, so the ids are Advance's. A draft
    /// longer than the batch buffers hold is cut (verifying fewer tokens is still exact).
    /// </summary>
    public IReadOnlyList<int> AdvanceWithDraft(int token, ReadOnlySpan<int> draft)
    {
        var sampler = _sampler ?? throw new InvalidOperationException("AdvanceWithDraft needs a generation begun with BeginGeneration.");
        draft = draft[..Math.Min(draft.Length, _buffers.MaxRows - 1)];
        int rows = 1 + draft.Length;
        int start = Position;
        if (start + rows > ContextLength)
        {
            throw new InvalidOperationException($"{rows} positions from {start} do not fit the context of {ContextLength} tokens.");
        }

        int[] ids = [token, .. draft];
        int vocab = _model.Config.VocabSize;
        if (_draftLogits.Length < rows * vocab)
        {
            _draftLogits = new float[rows * vocab];
        }

        LlamaForward.Forward(_model, _buffers, _cache.Storage, ids, start, _draftLogits, allRows: true);
        _cache.Append(ids);

        // Row i's logits choose the id after ids[i], sampled in row order with the context as it is there.
        var chosen = DraftAcceptance.KeepAgreeingPrefix(draft, row =>
        {
            _context.Add(ids[row]);
            return sampler.Sample(_draftLogits.AsSpan(row * vocab, vocab), _context);
        });

        // Keep token and the accepted draft tokens; the rejected ones' keys and values are overwritten later.
        _cache.Truncate(start + chosen.Count);
        return chosen;
    }

    /// <summary>Forgets the cached tokens.</summary>
    public void Reset() => _cache.Truncate(0);

    public void Dispose()
    {
        _buffers.Dispose();
        _cache.Dispose();
    }
}
