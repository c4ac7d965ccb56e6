// The weights of a Llama model as the loader hands them to a backend: per-layer norms and linear layers,
// each linear either GPTQ-packed or dense. Shapes are the checkpoint's (HF layout).
namespace CodeLlamaLsp.Inference.Model;

/// <summary>A linear layer y = x W (+ bias), with <see cref="InFeatures"/> inputs and <see cref="OutFeatures"/> outputs.</summary>
public abstract record LinearWeights(string Name, int InFeatures, int OutFeatures);

/// <summary>
/// A GPTQ linear in the AutoGPTQ layout (FACTS.md): qweight I32 [in*bits/32, out], qzeros I32
/// [groups, out*bits/32], scales F16 [groups, out], g_idx I32 [in] (null: g = k / GroupSize), bias F16 [out] or null.
/// </summary>
/// <param name="GroupSize">Effective group size: equals InFeatures when the file says -1.</param>
/// <param name="ZerosAreV2">True for gptq_v2 (true zeros); false for v1 (stored zero + 1).</param>
public sealed record GptqLinearWeights(
    string Name,
    int InFeatures,
    int OutFeatures,
    int Bits,
    int GroupSize,
    bool ZerosAreV2,
    TensorData QWeight,
    TensorData QZeros,
    TensorData Scales,
    TensorData? GIdx,
    TensorData? Bias) : LinearWeights(Name, InFeatures, OutFeatures);

/// <summary>A dense linear in the HF layout: weight [out, in] in F16, BF16 or F32; bias [out] or null.</summary>
public sealed record DenseLinearWeights(string Name, int InFeatures, int OutFeatures, TensorData Weight, TensorData? Bias)
    : LinearWeights(Name, InFeatures, OutFeatures);

/// <summary>One decoder layer.</summary>
public sealed record LayerWeights(
    TensorData InputNorm, // [hidden]
    LinearWeights QProj, // hidden -> heads * head_dim
    LinearWeights KProj, // hidden -> kv_heads * head_dim
    LinearWeights VProj, // hidden -> kv_heads * head_dim
    LinearWeights OProj, // heads * head_dim -> hidden
    TensorData PostAttentionNorm, // [hidden]
    LinearWeights GateProj, // hidden -> intermediate
    LinearWeights UpProj, // hidden -> intermediate
    LinearWeights DownProj); // intermediate -> hidden

/// <summary>All weights of a Llama model.</summary>
public sealed record LlamaWeights(
    LlamaConfig Config,
    QuantizationConfig? Quantization,
    TensorData Embedding, // [vocab, hidden]
    IReadOnlyList<LayerWeights> Layers,
    TensorData FinalNorm, // [hidden]
    TensorData LmHead); // [vocab, hidden], not tied in CodeLlama
