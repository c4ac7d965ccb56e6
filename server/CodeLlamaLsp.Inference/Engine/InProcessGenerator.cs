// ITextGenerator over the in-process engine: the decoding session (IDecodingSession: InferenceSession on the
// CPU or CudaDecodingSession) prefills through its prefix cache and chooses each token; this
// loop detokenizes and stops token by token (stop ids, stop strings, context full, cancellation between
// tokens), streaming text as it becomes final. With speculation on (GenerationOptions.Speculative) a step
// verifies a draft from PromptLookupDrafter and may choose several ids at once; they pass the same checks one
// by one, so the answer is the one plain decoding gives. One generation runs at a time; compute runs on the
// thread pool so the caller's thread (the LSP loop) stays free.
using System.Runtime.CompilerServices;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Sampling;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Generates with a model in this process, through an <see cref="IDecodingSession"/> (CPU or CUDA).</summary>
public sealed class InProcessGenerator : ITextGenerator, IDisposable
{
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly ITokenizer? _tokenizer;
    private readonly IReadOnlyList<IDisposable> _owned;

    /// <summary>
    /// Creates a generator over an <see cref="InferenceSession"/> of <paramref name="contextLength"/> positions (0: the
    /// default, min(max_position_embeddings, 4096)). Without a <paramref name="tokenizer"/> chunks carry ids and empty
    /// text. <paramref name="owned"/> are disposed with the generator after the model (for example the backend and the
    /// loaded checkpoint whose memory-mapped files the CPU backend keeps reading).
    /// </summary>
    public InProcessGenerator(LlamaModel model, ITokenizer? tokenizer, string name, int contextLength = 0, IReadOnlyList<IDisposable>? owned = null)
        : this(new InferenceSession(model ?? throw new ArgumentNullException(nameof(model)), ResolveContextLength(model.Config, contextLength)), tokenizer, name, [model, .. owned ?? []])
    {
    }

    /// <summary>
    /// Creates a generator over <paramref name="session"/>, which it owns; <paramref name="owned"/> are disposed after
    /// the session, in order.
    /// </summary>
    public InProcessGenerator(IDecodingSession session, ITokenizer? tokenizer, string name, IReadOnlyList<IDisposable>? owned = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(name);
        Session = session;
        _tokenizer = tokenizer;
        _owned = owned ?? [];
        int vocab = session.Config.VocabSize;
        Info = new ModelInfo(name, session.ContextLength, vocab, SupportsInfill: vocab >= 32016) { PromptBudget = session.PromptBudget };
    }

    public ModelInfo Info { get; }

    /// <summary>The model's configuration.</summary>
    public Model.LlamaConfig Config => Session.Config;

    /// <summary>The model's tokenizer, or null when the checkpoint has none.</summary>
    public ITokenizer? Tokenizer => _tokenizer;

    /// <summary>The session generations run in; its prefix cache persists between requests.</summary>
    public IDecodingSession Session { get; }

    /// <summary>The context length used when none is configured: min(max_position_embeddings, 4096).</summary>
    public static int DefaultContextLength(Model.LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Math.Min(config.MaxPositionEmbeddings, 4096);
    }

    public async IAsyncEnumerable<GenerationChunk> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = request.Options ?? throw new ArgumentException("The request has no options.", nameof(request));
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxNewTokens);
        var prompt = request.PromptIds.ToArray();
        if (prompt.Length > Session.ContextLength)
        {
            throw new ArgumentException($"The prompt has {prompt.Length} tokens; the context holds {Session.ContextLength}.", nameof(request));
        }

        _ = new Sampler(options); // validates the options before anything runs
        var stopIds = new HashSet<int>(options.StopTokenIds) { Session.Config.EosTokenId };
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The session chose each next id already (on the GPU for CUDA): the loop only decides whether to keep it.
            // A speculative step chooses several at once; they wait in `chosen` and pass the same checks one by one,
            // so stops, max tokens and the context limit are exact, and whatever follows a stop is dropped.
            var drafter = options.Speculative == SpeculativeMode.Auto ? new PromptLookupDrafter(prompt) : null;
            var chosen = new Queue<int>();
            var first = await RunAsync(() => [Session.BeginGeneration(prompt, options, cancellationToken)], cancellationToken).ConfigureAwait(false);
            Enqueue(chosen, first);
            int length = prompt.Length;
            var text = CreateTextStream();
            var stops = new StopStringMatcher(options.StopStrings);
            var counts = new SpeculationCounts(drafter);
            var reason = StopReason.MaxTokens;
            for (int produced = 0; produced < options.MaxNewTokens; produced++)
            {
                if (!chosen.TryDequeue(out int id) || cancellationToken.IsCancellationRequested)
                {
                    reason = StopReason.Cancelled;
                    break;
                }

                if (length >= Session.ContextLength)
                {
                    reason = StopReason.ContextFull;
                    break;
                }

                if (stopIds.Contains(id))
                {
                    reason = StopReason.StopToken;
                    break;
                }

                length++;
                drafter?.Append(id);
                var emit = stops.Push(text.Push(id));
                if (stops.Stopped)
                {
                    yield return counts.Stamp(new GenerationChunk(emit, [id], StopReason.StopString));
                    yield break;
                }

                yield return counts.Stamp(new GenerationChunk(emit, [id]));

                // Ids still allowed after this one: a step may return up to draft + 1 of them, and each drafted row
                // needs a cache position (the last one, like Advance's, at most ContextLength - 1).
                int allowed = options.MaxNewTokens - (produced + 1);
                if (chosen.Count == 0 && allowed > 0)
                {
                    int maxDraft = Math.Min(allowed - 1, Session.ContextLength - length);
                    Enqueue(chosen, await RunAsync(() => drafter?.Advance(Session, id, maxDraft) ?? [Session.Advance(id)], cancellationToken).ConfigureAwait(false));
                }
            }

            var tail = stops.Push(text.Finish());
            yield return counts.Stamp(new GenerationChunk(stops.Stopped ? tail : tail + stops.Flush(), [], stops.Stopped ? StopReason.StopString : reason));
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    public void Dispose()
    {
        Session.Dispose();
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        _oneAtATime.Dispose();
    }

    /// <summary>The configured context length, or the default for 0; throws when it exceeds max_position_embeddings.</summary>
    internal static int ResolveContextLength(Model.LlamaConfig config, int requested)
    {
        if (requested <= 0)
        {
            return DefaultContextLength(config);
        }

        if (requested > config.MaxPositionEmbeddings)
        {
            throw new ArgumentOutOfRangeException(nameof(requested), $"Context length {requested} exceeds the model's max_position_embeddings of {config.MaxPositionEmbeddings}.");
        }

        return requested;
    }

    private static void Enqueue(Queue<int> chosen, IReadOnlyList<int>? ids)
    {
        foreach (var id in ids ?? [])
        {
            chosen.Enqueue(id);
        }
    }

    /// <summary>Runs one compute step on the thread pool; null when it was cancelled.</summary>
    private static async Task<IReadOnlyList<int>?> RunAsync(Func<IReadOnlyList<int>> step, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(step, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>Puts on each chunk the drafted and accepted counts of the steps since the previous chunk.</summary>
    private sealed class SpeculationCounts(PromptLookupDrafter? drafter)
    {
        private int _drafted;
        private int _accepted;

        public GenerationChunk Stamp(GenerationChunk chunk)
        {
            if (drafter == null)
            {
                return chunk;
            }

            var stamped = chunk with { DraftedTokens = drafter.Drafted - _drafted, AcceptedTokens = drafter.Accepted - _accepted };
            (_drafted, _accepted) = (drafter.Drafted, drafter.Accepted);
            return stamped;
        }
    }

    private ITokenTextStream CreateTextStream() => _tokenizer switch
    {
        null => new NoTextStream(),
        LlamaTokenizer llama => new DetokenizerTextStream(new StreamingDetokenizer(llama)),
        _ => new DecodeDiffTextStream(_tokenizer),
    };
}
