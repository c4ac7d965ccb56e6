// The immutable half of the CUDA engine, as LlamaModel is on the CPU: a Llama model's config and its weights
// uploaded once to one GPU, packed as in the file, with q/k/v and gate/up concatenated into one GEMV each where
// their input layouts allow. Nothing here changes after loading; every per-sequence thing (KV cache, position,
// scratch buffers, captured graphs) lives in a CudaDecodingSession, so one model can serve several sessions.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>A Llama model whose weights live on one GPU.</summary>
public sealed class CudaModel : IDisposable
{
    private CudaModel(CudaBackend backend, LlamaConfig config, CudaLayer[] layers, CudaEmbedding embedding, CudaBuffer finalNorm, CudaLinear lmHead, WeightUploadTimes loadTimes)
    {
        Backend = backend;
        Config = config;
        Layers = layers;
        Embedding = embedding;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        LoadTimes = loadTimes;
    }

    public LlamaConfig Config { get; }

    /// <summary>The device and allocator the weights live on; sessions allocate through it too.</summary>
    public CudaBackend Backend { get; }

    /// <summary>Where the weight upload's time went (bench and the load log show it).</summary>
    public WeightUploadTimes LoadTimes { get; }

    /// <summary>Device bytes read per decoded token by the linear layers (weights, scales, zeros) and lm_head.</summary>
    public long WeightBytesPerToken => LmHead.SizeInBytes + Layers.Sum(l => l.Bytes);

    internal CudaLayer[] Layers { get; } // [layers]

    internal CudaEmbedding Embedding { get; } // [vocab, hidden] fp16

    internal CudaBuffer FinalNorm { get; } // [hidden]

    internal CudaLinear LmHead { get; } // hidden -> vocab

    /// <summary>
    /// Uploads <paramref name="weights"/> to <paramref name="backend"/>'s device through one pipeline: this thread allocates
    /// and describes, workers stage and copy (<see cref="StagedUpload"/>). <paramref name="progress"/> receives the fraction
    /// of layers handed over, which run at most the staging slots' bytes ahead of the copies. The backend is used, not
    /// owned: dispose it after the model.
    /// </summary>
    public static CudaModel Load(CudaBackend backend, LlamaWeights weights, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(weights);
        var c = weights.Config;
        using var upload = new StagedUpload(backend.Device, backend.Memory);
        var layers = new CudaLayer[c.NumLayers];
        for (int i = 0; i < c.NumLayers; i++)
        {
            var l = weights.Layers[i];
            layers[i] = new CudaLayer(
                CudaBuffer.Upload(upload, l.InputNorm),
                Fused(upload, l.QProj.Name.Replace("q_proj", "qkv_proj", StringComparison.Ordinal), [l.QProj, l.KProj, l.VProj]),
                CudaLinear.Upload(upload, l.OProj),
                CudaBuffer.Upload(upload, l.PostAttentionNorm),
                Fused(upload, l.GateProj.Name.Replace("gate_proj", "gate_up_proj", StringComparison.Ordinal), [l.GateProj, l.UpProj]),
                CudaLinear.Upload(upload, l.DownProj));
            progress?.Invoke((i + 1.0) / (c.NumLayers + 1));
        }

        var embedding = CudaEmbedding.Upload(upload, weights.Embedding);
        var finalNorm = CudaBuffer.Upload(upload, weights.FinalNorm);
        var lmHead = CudaLinear.UploadDense(upload, weights.LmHead.Name, weights.LmHead, c.HiddenSize, c.VocabSize);
        var model = new CudaModel(backend, c, layers, embedding, finalNorm, lmHead, upload.Finish());
        var gptq = layers.SelectMany(l => l.Qkv.Concat(l.GateUp).Append(l.O).Append(l.Down)).Where(l => l.Bits != 16).ToArray();
        if (gptq.Length > 0)
        {
            backend.Device.Kernels.ReserveDequantized(backend.Memory, gptq.Max(l => (long)l.InFeatures * l.OutFeatures));
        }

        progress?.Invoke(1.0);
        return model;
    }

    public void Dispose()
    {
        foreach (var l in Layers)
        {
            l.Dispose();
        }

        Embedding.Dispose();
        FinalNorm.Dispose();
        LmHead.Dispose();
    }

    /// <summary>One GEMV over the concatenated columns when the layers can share an input layout, else one per layer.</summary>
    private static CudaLinear[] Fused(StagedUpload upload, string name, LinearWeights[] parts)
    {
        if (parts.All(p => p is GptqLinearWeights)
            && GptqHostMatrix.TryConcatenate(name, [.. parts.Select(p => GptqHostMatrix.From((GptqLinearWeights)p))]) is { } fused)
        {
            return [CudaLinear.Upload(upload, fused)];
        }

        return [.. parts.Select(p => CudaLinear.Upload(upload, p))];
    }
}

/// <summary>
/// One decoder layer on the GPU. <see cref="Qkv"/> and <see cref="GateUp"/> hold one fused linear, or one per projection
/// when act-order permutations differ (their outputs go to consecutive column ranges).
/// </summary>
internal sealed record CudaLayer(
    CudaBuffer InputNorm, // [hidden]
    CudaLinear[] Qkv, // hidden -> heads * head_dim + 2 * kv_heads * head_dim
    CudaLinear O, // heads * head_dim -> hidden
    CudaBuffer PostNorm, // [hidden]
    CudaLinear[] GateUp, // hidden -> 2 * intermediate
    CudaLinear Down) // intermediate -> hidden
    : IDisposable
{
    public long Bytes => Qkv.Sum(q => q.SizeInBytes) + O.SizeInBytes + GateUp.Sum(g => g.SizeInBytes) + Down.SizeInBytes;

    public void Dispose()
    {
        InputNorm.Dispose();
        foreach (var q in Qkv)
        {
            q.Dispose();
        }

        O.Dispose();
        PostNorm.Dispose();
        foreach (var g in GateUp)
        {
            g.Dispose();
        }

        Down.Dispose();
    }
}
