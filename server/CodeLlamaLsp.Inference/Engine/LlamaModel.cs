// The immutable half of the engine: a Llama model's config and its weights prepared on one backend,
// loaded once. Sessions (KV cache, scratch, position) are created from it and hold the mutable state.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>A Llama model whose weights live on <see cref="Backend"/>.</summary>
public sealed class LlamaModel : IDisposable
{
    private LlamaModel(LlamaConfig config, IComputeBackend backend, PreparedEmbedding embedding, PreparedLayer[] layers, DeviceBuffer finalNorm, PreparedLinear lmHead)
    {
        Config = config;
        Backend = backend;
        Embedding = embedding;
        Layers = layers;
        FinalNorm = finalNorm;
        LmHead = lmHead;
    }

    public LlamaConfig Config { get; }

    public IComputeBackend Backend { get; }

    internal PreparedEmbedding Embedding { get; } // [vocab, hidden]

    internal PreparedLayer[] Layers { get; } // [layers]

    internal DeviceBuffer FinalNorm { get; } // [hidden]

    internal PreparedLinear LmHead { get; } // hidden -> vocab

    /// <summary>Bytes of prepared weights on the backend (linears only).</summary>
    public long WeightBytes => LmHead.SizeInBytes + Layers.Sum(l => l.Linears.Sum(x => x.SizeInBytes));

    /// <summary>
    /// Prepares every weight on <paramref name="backend"/> once. <paramref name="progress"/> receives the
    /// fraction done after each layer. The backend is used, not owned: dispose it after the model.
    /// </summary>
    public static LlamaModel Load(LlamaWeights weights, IComputeBackend backend, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(backend);
        var c = weights.Config;
        if (c.HiddenSize % c.NumHeads != 0 || c.NumHeads % c.NumKvHeads != 0 || c.HeadDim % 2 != 0)
        {
            throw new ArgumentException($"Config has hidden {c.HiddenSize}, {c.NumHeads} heads and {c.NumKvHeads} KV heads; heads must divide hidden (into an even head_dim) and KV heads must divide heads.", nameof(weights));
        }

        if (weights.Layers.Count != c.NumLayers)
        {
            throw new ArgumentException($"Config says {c.NumLayers} layers but the checkpoint has {weights.Layers.Count}.", nameof(weights));
        }

        int kvDim = c.NumKvHeads * c.HeadDim;
        var layers = new PreparedLayer[c.NumLayers];
        for (int i = 0; i < c.NumLayers; i++)
        {
            var l = weights.Layers[i];
            layers[i] = new PreparedLayer(
                backend.PrepareVector(l.InputNorm),
                Linear(backend, l.QProj, c.HiddenSize, c.HiddenSize),
                Linear(backend, l.KProj, c.HiddenSize, kvDim),
                Linear(backend, l.VProj, c.HiddenSize, kvDim),
                Linear(backend, l.OProj, c.HiddenSize, c.HiddenSize),
                backend.PrepareVector(l.PostAttentionNorm),
                Linear(backend, l.GateProj, c.HiddenSize, c.IntermediateSize),
                Linear(backend, l.UpProj, c.HiddenSize, c.IntermediateSize),
                Linear(backend, l.DownProj, c.IntermediateSize, c.HiddenSize));
            progress?.Invoke((i + 1.0) / (c.NumLayers + 1));
        }

        var embedding = backend.PrepareEmbedding(weights.Embedding);
        if (embedding.VocabSize != c.VocabSize || embedding.HiddenSize != c.HiddenSize)
        {
            throw new ArgumentException($"Embedding '{weights.Embedding.Name}' is [{embedding.VocabSize}, {embedding.HiddenSize}]; config expects [{c.VocabSize}, {c.HiddenSize}].", nameof(weights));
        }

        var lmHead = weights.LmHead;
        var head = Linear(backend, new DenseLinearWeights(lmHead.Name, c.HiddenSize, c.VocabSize, lmHead, null), c.HiddenSize, c.VocabSize);
        var model = new LlamaModel(c, backend, embedding, layers, backend.PrepareVector(weights.FinalNorm), head);
        progress?.Invoke(1.0);
        return model;
    }

    public void Dispose()
    {
        Embedding.Dispose();
        FinalNorm.Dispose();
        LmHead.Dispose();
        foreach (var layer in Layers)
        {
            layer.InputNorm.Dispose();
            layer.PostAttentionNorm.Dispose();
            foreach (var linear in layer.Linears)
            {
                linear.Dispose();
            }
        }
    }

    private static PreparedLinear Linear(IComputeBackend backend, LinearWeights w, int inFeatures, int outFeatures)
    {
        if (w.InFeatures != inFeatures || w.OutFeatures != outFeatures)
        {
            throw new ArgumentException($"Linear '{w.Name}' is [{w.InFeatures} -> {w.OutFeatures}]; the config expects [{inFeatures} -> {outFeatures}].");
        }

        return backend.PrepareLinear(w);
    }
}

/// <summary>One decoder layer's weights on the backend.</summary>
internal sealed record PreparedLayer(
    DeviceBuffer InputNorm, // [hidden]
    PreparedLinear QProj, // hidden -> heads * head_dim
    PreparedLinear KProj, // hidden -> kv_heads * head_dim
    PreparedLinear VProj, // hidden -> kv_heads * head_dim
    PreparedLinear OProj, // heads * head_dim -> hidden
    DeviceBuffer PostAttentionNorm, // [hidden]
    PreparedLinear GateProj, // hidden -> intermediate
    PreparedLinear UpProj, // hidden -> intermediate
    PreparedLinear DownProj) // intermediate -> hidden
{
    public IEnumerable<PreparedLinear> Linears => [QProj, KProj, VProj, OProj, GateProj, UpProj, DownProj];
}
