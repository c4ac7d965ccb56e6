// A Llama model small enough for ILGPU's CPU accelerator (vocab 96, hidden 64, 2 layers, GPTQ 4-bit g32,
// grouped-query attention) with random weights, built in memory, so the CUDA generation path can be checked
// against the CPU path in CI. Logits are spread over several units so fp16 rounding cannot flip an argmax.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

internal static class MicroLlama
{
    public static LlamaConfig Config { get; } = new()
    {
        VocabSize = 96,
        HiddenSize = 64,
        IntermediateSize = 128,
        NumLayers = 2,
        NumHeads = 2,
        NumKvHeads = 1,
        MaxPositionEmbeddings = 256,
        RopeTheta = 10000f,
    };

    /// <summary>The model; with <paramref name="actOrder"/> every GPTQ layer has its own act-order permutation, so q/k/v and gate/up run unfused.</summary>
    public static LlamaWeights Create(int seed, bool actOrder = false)
    {
        var c = Config;
        var rng = new Random(seed);
        int kvDim = c.NumKvHeads * c.HeadDim;
        var layers = Enumerable.Range(0, c.NumLayers).Select(_ => new LayerWeights(
            RandomWeights.Vector(rng, c.HiddenSize),
            RandomWeights.Gptq(rng, c.HiddenSize, c.HiddenSize, 4, 32, actOrder),
            RandomWeights.Gptq(rng, c.HiddenSize, kvDim, 4, 32, actOrder),
            RandomWeights.Gptq(rng, c.HiddenSize, kvDim, 4, 32, actOrder),
            RandomWeights.Gptq(rng, c.HiddenSize, c.HiddenSize, 4, 32, actOrder),
            RandomWeights.Vector(rng, c.HiddenSize),
            RandomWeights.Gptq(rng, c.HiddenSize, c.IntermediateSize, 4, 32, actOrder),
            RandomWeights.Gptq(rng, c.HiddenSize, c.IntermediateSize, 4, 32, actOrder),
            RandomWeights.Gptq(rng, c.IntermediateSize, c.HiddenSize, 4, 32, actOrder))).ToList();
        var embedding = TensorData.FromArray("model.embed_tokens.weight", TensorDType.F16, [c.VocabSize, c.HiddenSize], Halves(rng, c.VocabSize * c.HiddenSize, 1.0));
        var lmHead = TensorData.FromArray("lm_head.weight", TensorDType.F16, [c.VocabSize, c.HiddenSize], Halves(rng, c.VocabSize * c.HiddenSize, 0.6));
        return new LlamaWeights(c, new QuantizationConfig(4, 32, DescAct: actOrder, Symmetric: false, ZerosAreV2: false), embedding, layers, RandomWeights.Vector(rng, c.HiddenSize), lmHead);
    }

    private static Half[] Halves(Random rng, int n, double scale) =>
        RandomWeights.Floats(rng, n, scale).Select(v => (Half)v).ToArray();

    /// <summary>Random prompt ids of the model's vocabulary (ids 0-2 are the special tokens).</summary>
    public static int[] RandomIds(Random rng, int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, Config.VocabSize)).ToArray();

    /// <summary>The model on the CPU engine: the oracle the CUDA session is compared with.</summary>
    public static InProcessGenerator CpuGenerator(LlamaWeights weights, int context)
    {
        var backend = new CpuBackend();
        return new InProcessGenerator(LlamaModel.Load(weights, backend), tokenizer: null, "micro", context, [backend]);
    }

    /// <summary>The model on the CUDA session (<paramref name="kind"/> "sim" or "gpu"), prompts run in batches of <paramref name="maxBatchRows"/>.</summary>
    public static InProcessGenerator CudaGenerator(string kind, LlamaWeights weights, int context, int maxBatchRows)
    {
        var backend = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var model = CudaModel.Load(backend, weights);
        var session = new CudaDecodingSession(model, context, maxBatchRows);
        return new InProcessGenerator(session, tokenizer: null, "micro", [model, backend]);
    }
}
