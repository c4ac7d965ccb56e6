// The model hyper-parameters that the forward pass needs, read from a Hugging Face config.json.
namespace CodeLlamaLsp.Inference.Model;

/// <summary>Llama architecture parameters (FACTS.md lists the CodeLlama values).</summary>
public sealed record LlamaConfig
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public float RopeTheta { get; init; } = 10000f;
    public float RmsNormEps { get; init; } = 1e-5f;
    public int BosTokenId { get; init; } = 1;
    public int EosTokenId { get; init; } = 2;

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumHeads;

    /// <summary>Query heads that share one KV head (grouped-query attention).</summary>
    public int GroupSize => NumHeads / NumKvHeads;
}

/// <summary>How the linear layers are quantized; null on a <see cref="LlamaWeights"/> means plain fp16/bf16/fp32.</summary>
/// <param name="Bits">4 or 8.</param>
/// <param name="GroupSize">As written in the file: -1 means one group over all inputs.</param>
/// <param name="DescAct">Act-order: g_idx is a non-monotonic map.</param>
/// <param name="Symmetric">Symmetric quantization (zeros are the mid value).</param>
/// <param name="ZerosAreV2">checkpoint_format gptq_v2 stores the true zero; v1 stores zero - 1.</param>
public sealed record QuantizationConfig(int Bits, int GroupSize, bool DescAct, bool Symmetric, bool ZerosAreV2);
