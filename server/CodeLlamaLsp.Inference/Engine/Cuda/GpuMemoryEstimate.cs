// What the CUDA engine (a CudaModel and one CudaDecodingSession) will allocate for a model, computed from the
// checkpoint's tensor sizes before any upload, so an out-of-memory GPU is reported once with the whole need
// (weights, KV cache, buffers).
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Device bytes by kind; weights are stored packed, as in the file (embedding and lm_head as fp16).</summary>
internal readonly record struct GpuMemoryEstimate(long Weights, long KvCache, long Buffers)
{
    public long Total => Weights + KvCache + Buffers;

    public static GpuMemoryEstimate For(LlamaWeights weights, int contextLength, int maxBatchRows)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var c = weights.Config;
        long linear = weights.Layers.Sum(l => new[] { l.QProj, l.KProj, l.VProj, l.OProj, l.GateProj, l.UpProj, l.DownProj }.Sum(Bytes));
        long norms = (long)weights.Layers.Count * 2 * c.HiddenSize * sizeof(float);
        long tables = 2 * (long)c.VocabSize * c.HiddenSize * 2; // embedding and lm_head in fp16
        long kv = (long)c.NumLayers * c.NumKvHeads * c.HeadDim * contextLength * 2 * 2;
        long maxIn = Math.Max(c.HiddenSize, c.IntermediateSize);
        long qkv = c.HiddenSize + (2L * c.NumKvHeads * c.HeadDim);
        long perRow = (2L * c.HiddenSize) + maxIn + qkv + (2L * c.IntermediateSize);
        long logits = (long)CudaDecodingSession.VerificationRows(maxBatchRows) * c.VocabSize;
        long buffers = (((perRow * maxBatchRows) + logits) * sizeof(float)) + ((long)contextLength * c.HeadDim * sizeof(float)) // + rope table
            + (2 * Math.Min(CudaKernels.MaxDequantizedHalves, weights.Layers.Max(LargestLayer))); // cuBLAS's fp16 scratch, where cuBLAS is found
        return new GpuMemoryEstimate(linear + norms + tables, kv, buffers);
    }

    public string Describe(int contextLength) =>
        $"the model (weights {Gib(Weights)}, KV cache for {contextLength} positions {Gib(KvCache)}, buffers {Gib(Buffers)})";

    /// <summary>Weights of the layer's widest (fused) linear, as the dequantization scratch holds them.</summary>
    private static long LargestLayer(LayerWeights l) => Math.Max(
        Math.Max((long)l.OProj.InFeatures * l.OProj.OutFeatures, (long)l.DownProj.InFeatures * l.DownProj.OutFeatures),
        Math.Max((long)l.QProj.InFeatures * (l.QProj.OutFeatures + l.KProj.OutFeatures + l.VProj.OutFeatures), (long)l.GateProj.InFeatures * (l.GateProj.OutFeatures + l.UpProj.OutFeatures)));

    private static long Bytes(LinearWeights w) => w switch
    {
        GptqLinearWeights g => g.QWeight.Data.Length + g.QZeros.Data.Length + g.Scales.Data.Length + (g.GIdx?.Data.Length ?? 0) + (g.Bias?.Data.Length ?? 0),
        DenseLinearWeights d => (d.Weight.ElementCount * 2) + (d.Bias?.ElementCount * 2 ?? 0),
        _ => 0,
    };

    private static string Gib(long bytes) => $"{bytes / (1024.0 * 1024 * 1024):F2} GiB";
}
