// Binds checkpoint tensors to the Llama forward pass: every tensor the forward needs must exist with
// the dtype and shape FACTS.md gives (HF layout; GPTQ packing for quantized linears), or loading stops
// with a message naming the file, the tensor and expected versus found.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>Builds <see cref="LlamaWeights"/> from a <see cref="CheckpointTensors"/> after checking each tensor.</summary>
internal sealed class LlamaWeightBinder
{
    private readonly CheckpointTensors tensors;
    private readonly CheckpointConfig config;
    private readonly Action<TensorData> onBound;

    public LlamaWeightBinder(CheckpointTensors tensors, CheckpointConfig config, Action<TensorData> onBound)
    {
        this.tensors = tensors;
        this.config = config;
        this.onBound = onBound;
    }

    public LlamaWeights Bind()
    {
        var c = config.Model;
        int headDim = c.HeadDim;
        var embedding = Float("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
        var layers = new List<LayerWeights>(c.NumLayers);
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            layers.Add(new LayerWeights(
                InputNorm: Float(p + "input_layernorm.weight", c.HiddenSize),
                QProj: Linear(p + "self_attn.q_proj", c.HiddenSize, c.NumHeads * headDim),
                KProj: Linear(p + "self_attn.k_proj", c.HiddenSize, c.NumKvHeads * headDim),
                VProj: Linear(p + "self_attn.v_proj", c.HiddenSize, c.NumKvHeads * headDim),
                OProj: Linear(p + "self_attn.o_proj", c.NumHeads * headDim, c.HiddenSize),
                PostAttentionNorm: Float(p + "post_attention_layernorm.weight", c.HiddenSize),
                GateProj: Linear(p + "mlp.gate_proj", c.HiddenSize, c.IntermediateSize),
                UpProj: Linear(p + "mlp.up_proj", c.HiddenSize, c.IntermediateSize),
                DownProj: Linear(p + "mlp.down_proj", c.IntermediateSize, c.HiddenSize)));
        }

        var finalNorm = Float("model.norm.weight", c.HiddenSize);
        var lmHead = config.TieWordEmbeddings && !tensors.Contains("lm_head.weight")
            ? embedding
            : Float("lm_head.weight", c.VocabSize, c.HiddenSize);
        return new LlamaWeights(c, config.Quantization, embedding, layers, finalNorm, lmHead);
    }

    private LinearWeights Linear(string prefix, int inFeatures, int outFeatures)
    {
        var q = config.Quantization;
        if (tensors.Contains(prefix + ".qweight"))
        {
            if (q == null)
            {
                throw new ModelLoadException($"{Where(prefix + ".qweight")}: tensor '{prefix}.qweight' is GPTQ-packed, but the checkpoint has no quantization config (quantize_config.json or config.json quantization_config).");
            }

            return Gptq(prefix, inFeatures, outFeatures, q);
        }

        if (q == null || tensors.Contains(prefix + ".weight"))
        {
            var weight = Float(prefix + ".weight", outFeatures, inFeatures);
            var bias = OptionalBias(prefix + ".bias", outFeatures, weight.DType);
            return new DenseLinearWeights(prefix, inFeatures, outFeatures, weight, bias);
        }

        return Gptq(prefix, inFeatures, outFeatures, q);
    }

    private GptqLinearWeights Gptq(string prefix, int inFeatures, int outFeatures, QuantizationConfig q)
    {
        int perWord = 32 / q.Bits;
        int groupSize = q.GroupSize == -1 ? inFeatures : q.GroupSize;
        int groups = (inFeatures + groupSize - 1) / groupSize;
        if (inFeatures % perWord != 0 || outFeatures % perWord != 0)
        {
            throw new ModelLoadException($"{Where(prefix + ".qweight")}: tensor '{prefix}.qweight': {inFeatures} inputs x {outFeatures} outputs cannot be packed {perWord} per 32-bit word at {q.Bits} bits.");
        }

        var qweight = Require(prefix + ".qweight", TensorDType.I32, inFeatures / perWord, outFeatures);
        var qzeros = Require(prefix + ".qzeros", TensorDType.I32, groups, outFeatures / perWord);
        var scales = Require(prefix + ".scales", TensorDType.F16, groups, outFeatures);
        TensorData? gIdx = null;
        if (tensors.Contains(prefix + ".g_idx"))
        {
            gIdx = Require(prefix + ".g_idx", TensorDType.I32, inFeatures);
            CheckGroupIndex(gIdx, groups);
        }

        var bias = OptionalBias(prefix + ".bias", outFeatures, TensorDType.F16);
        return new GptqLinearWeights(prefix, inFeatures, outFeatures, q.Bits, groupSize, q.ZerosAreV2, qweight, qzeros, scales, gIdx, bias);
    }

    private void CheckGroupIndex(TensorData gIdx, int groups)
    {
        var values = gIdx.As<int>();
        for (int k = 0; k < values.Length; k++)
        {
            if ((uint)values[k] >= (uint)groups)
            {
                throw new ModelLoadException($"{Where(gIdx.Name)}: tensor '{gIdx.Name}': expected group indices in [0, {groups - 1}], found {values[k]} at row {k}.");
            }
        }
    }

    // Llama checkpoints often carry all-zero biases; dropping them saves every backend a pointless add.
    private TensorData? OptionalBias(string name, int outFeatures, TensorDType expected)
    {
        if (!tensors.Contains(name))
        {
            return null;
        }

        var bias = expected == TensorDType.F16 ? Require(name, TensorDType.F16, outFeatures) : Float(name, outFeatures);
        return bias.Data.Span.IndexOfAnyExcept((byte)0) < 0 ? null : bias;
    }

    private TensorData Float(string name, params long[] shape)
    {
        var found = tensors.Find(name) ?? throw Missing(name, "F16, BF16 or F32", shape);
        if (found.Entry.DType is not (TensorDType.F16 or TensorDType.BF16 or TensorDType.F32))
        {
            throw Mismatch(found.File, found.Entry, "F16, BF16 or F32", shape);
        }

        return Check(found.File, found.Entry, "F16, BF16 or F32", shape);
    }

    private TensorData Require(string name, TensorDType dtype, params long[] shape)
    {
        var found = tensors.Find(name) ?? throw Missing(name, dtype.ToString(), shape);
        if (found.Entry.DType != dtype)
        {
            throw Mismatch(found.File, found.Entry, dtype.ToString(), shape);
        }

        return Check(found.File, found.Entry, dtype.ToString(), shape);
    }

    private TensorData Check(SafetensorsFile file, SafetensorsEntry entry, string dtypeText, long[] shape)
    {
        if (!entry.Shape.SequenceEqual(shape))
        {
            throw Mismatch(file, entry, dtypeText, shape);
        }

        var tensor = file.GetTensor(entry.Name);
        onBound(tensor);
        return tensor;
    }

    private string Where(string name) => tensors.Find(name)?.File.Path ?? tensors.DescribeFiles();

    private ModelLoadException Missing(string name, string dtypeText, long[] shape) =>
        new($"{tensors.DescribeFiles()}: missing tensor '{name}' (expected {dtypeText} {FormatShape(shape)}{QuantizationNote()}).");

    private static ModelLoadException Mismatch(SafetensorsFile file, SafetensorsEntry entry, string dtypeText, long[] shape) =>
        new($"{file.Path}: tensor '{entry.Name}': expected {dtypeText} {FormatShape(shape)}, found {entry.DType} {FormatShape(entry.Shape)}.");

    private string QuantizationNote() =>
        config.Quantization is { } q ? $"; GPTQ {q.Bits}-bit, group_size {q.GroupSize}" : string.Empty;

    private static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
