// ITextGenerator over the in-process engine: prefill through the prefix cache, then sample, detokenize
// and stop token by token, streaming text as it becomes final. One generation runs at a time; compute
// runs on the thread pool so the caller's thread (the LSP loop) stays free.
using System.Runtime.CompilerServices;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Sampling;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Generates with a <see cref="LlamaModel"/> in this process (CPU or CUDA backend).</summary>
public sealed class InProcessGenerator : ITextGenerator, IDisposable
{
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly ITokenizer? _tokenizer;
    private readonly IReadOnlyList<IDisposable> _owned;

    /// <summary>
    /// Creates a generator with one session of <paramref name="contextLength"/> positions (0: the default,
    /// min(max_position_embeddings, 4096)). Without a <paramref name="tokenizer"/> chunks carry ids and empty
    /// text. <paramref name="owned"/> are disposed with the generator after the model (for example the backend
    /// and the loaded checkpoint whose memory-mapped files the CPU backend keeps reading).
    /// </summary>
    public InProcessGenerator(LlamaModel model, ITokenizer? tokenizer, string name, int contextLength = 0, IReadOnlyList<IDisposable>? owned = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(name);
        Model = model;
        _tokenizer = tokenizer;
        _owned = owned ?? [];
        Session = new InferenceSession(model, ResolveContextLength(model.Config, contextLength));
        int vocab = model.Config.VocabSize;
        Info = new ModelInfo(name, Session.ContextLength, vocab, SupportsInfill: vocab >= 32016);
    }

    public ModelInfo Info { get; }

    public LlamaModel Model { get; }

    /// <summary>The model's tokenizer, or null when the checkpoint has none.</summary>
    public ITokenizer? Tokenizer => _tokenizer;

    /// <summary>The session generations run in; its prefix cache persists between requests.</summary>
    public InferenceSession Session { get; }

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
        var sampler = new Sampler(options);
        var prompt = request.PromptIds.ToArray();
        if (prompt.Length > Session.ContextLength)
        {
            throw new ArgumentException($"The prompt has {prompt.Length} tokens; the context holds {Session.ContextLength}.", nameof(request));
        }

        var stopIds = new HashSet<int>(options.StopTokenIds) { Model.Config.EosTokenId };
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var logits = await RunAsync(() => Session.Prefill(prompt, cancellationToken), cancellationToken).ConfigureAwait(false);
            var context = new List<int>(prompt);
            var text = CreateTextStream();
            var stops = new StopStringMatcher(options.StopStrings);
            var reason = StopReason.MaxTokens;
            for (int produced = 0; produced < options.MaxNewTokens; produced++)
            {
                if (logits == null || cancellationToken.IsCancellationRequested)
                {
                    reason = StopReason.Cancelled;
                    break;
                }

                if (context.Count >= Session.ContextLength)
                {
                    reason = StopReason.ContextFull;
                    break;
                }

                int id = sampler.Sample(logits, context);
                if (stopIds.Contains(id))
                {
                    reason = StopReason.StopToken;
                    break;
                }

                context.Add(id);
                var emit = stops.Push(text.Push(id));
                if (stops.Stopped)
                {
                    yield return new GenerationChunk(emit, [id], StopReason.StopString);
                    yield break;
                }

                yield return new GenerationChunk(emit, [id]);
                if (produced + 1 < options.MaxNewTokens)
                {
                    logits = await RunAsync(() => Session.Decode(id), cancellationToken).ConfigureAwait(false);
                }
            }

            var tail = stops.Push(text.Finish());
            yield return new GenerationChunk(stops.Stopped ? tail : tail + stops.Flush(), [], stops.Stopped ? StopReason.StopString : reason);
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    public void Dispose()
    {
        Session.Dispose();
        Model.Dispose();
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        _oneAtATime.Dispose();
    }

    private static int ResolveContextLength(Model.LlamaConfig config, int requested)
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

    /// <summary>Runs one compute step on the thread pool; null when it was cancelled.</summary>
    private static async Task<float[]?> RunAsync(Func<float[]> step, CancellationToken cancellationToken)
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

    private ITokenTextStream CreateTextStream() => _tokenizer switch
    {
        null => new NoTextStream(),
        LlamaTokenizer llama => new DetokenizerTextStream(new StreamingDetokenizer(llama)),
        _ => new DecodeDiffTextStream(_tokenizer),
    };
}
