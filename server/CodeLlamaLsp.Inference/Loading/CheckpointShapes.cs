// The model geometries the checkpoint generator can produce: the CodeLlama sizes from FACTS.md and the
// tiny fixture's shape, so benchmarks can run the real 34B layout without downloading it.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>Named Llama shapes: 34b, 13b, 7b (CodeLlama) and tiny (the tiny-32k-4bit-g32 fixture).</summary>
public static class CheckpointShapes
{
    public static IReadOnlyList<string> Names { get; } = ["34b", "13b", "7b", "tiny"];

    /// <summary>The config for a shape name (case-insensitive); throws ArgumentException naming the choices.</summary>
    public static LlamaConfig Get(string shape) => shape.ToUpperInvariant() switch
    {
        "34B" => CodeLlama(hidden: 8192, intermediate: 22016, layers: 48, heads: 64, kvHeads: 8, vocab: 32000),
        "13B" => CodeLlama(hidden: 5120, intermediate: 13824, layers: 40, heads: 40, kvHeads: 40, vocab: 32016),
        "7B" => CodeLlama(hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32, vocab: 32016),
        "TINY" => new LlamaConfig
        {
            VocabSize = 32000,
            HiddenSize = 128,
            IntermediateSize = 352,
            NumLayers = 2,
            NumHeads = 4,
            NumKvHeads = 2,
            MaxPositionEmbeddings = 4096,
            RopeTheta = 1e6f,
            RmsNormEps = 1e-5f,
        },
        _ => throw new ArgumentException($"unknown shape '{shape}'; expected one of {string.Join(", ", Names)}.", nameof(shape)),
    };

    private static LlamaConfig CodeLlama(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab) => new()
    {
        VocabSize = vocab,
        HiddenSize = hidden,
        IntermediateSize = intermediate,
        NumLayers = layers,
        NumHeads = heads,
        NumKvHeads = kvHeads,
        MaxPositionEmbeddings = 16384,
        RopeTheta = 1e6f,
        RmsNormEps = 1e-5f,
    };
}
