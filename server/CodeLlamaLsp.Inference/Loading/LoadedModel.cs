// A model ready for a backend: its configuration, its validated weights (windows into memory-mapped
// files) and the tokenizer beside it. Disposing it unmaps the files, so backends copy or upload first.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>Progress of <see cref="ModelLoader.Load"/>; Stage is a short human-readable phrase.</summary>
public sealed record LoadProgress(long BytesDone, long BytesTotal, int TensorsDone, int TensorsTotal, string Stage);

/// <summary>A loaded checkpoint; owns the file mappings that <see cref="Weights"/> points into.</summary>
public sealed class LoadedModel : IDisposable
{
    private readonly CheckpointTensors tensors;

    internal LoadedModel(string name, string directory, CheckpointConfig checkpointConfig, LlamaWeights weights, string? tokenizerPath, CheckpointTensors tensors)
    {
        Name = name;
        Directory = directory;
        CheckpointConfig = checkpointConfig;
        Weights = weights;
        TokenizerPath = tokenizerPath;
        this.tensors = tensors;
        WeightBytes = tensors.TotalBytes;
    }

    /// <summary>Display name: the folder name, or the Hugging Face id (with @revision when not main).</summary>
    public string Name { get; }

    public string Directory { get; }

    public LlamaConfig Config => Weights.Config;

    /// <summary>config.json and quantization settings as read (includes tie_word_embeddings, model_file_base_name).</summary>
    public CheckpointConfig CheckpointConfig { get; }

    public QuantizationConfig? Quantization => Weights.Quantization;

    public LlamaWeights Weights { get; }

    /// <summary>tokenizer.model beside the weights, or null when the checkpoint has none.</summary>
    public string? TokenizerPath { get; }

    /// <summary>Bytes of tensor data in the weight files.</summary>
    public long WeightBytes { get; }

    /// <summary>The weight files (one, or the shards).</summary>
    public IReadOnlyList<string> WeightFiles => tensors.Files.Select(f => f.Path).ToList();

    public void Dispose() => tensors.Dispose();
}
