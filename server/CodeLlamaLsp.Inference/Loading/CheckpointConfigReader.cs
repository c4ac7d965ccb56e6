// Reads a Hugging Face Llama checkpoint's config.json and its GPTQ quantization settings, refusing
// what the engine cannot run (other architectures, rope scaling, 2/3-bit) with a message that says so.
using System.Globalization;
using System.Text.Json;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>What config.json and the quantization config say about a checkpoint.</summary>
/// <param name="ModelFileBaseName">quantize_config's model_file_base_name, used to find the weight file.</param>
/// <param name="TieWordEmbeddings">lm_head shares the embedding matrix (CodeLlama: false).</param>
public sealed record CheckpointConfig(LlamaConfig Model, QuantizationConfig? Quantization, string? ModelFileBaseName, bool TieWordEmbeddings);

/// <summary>Parses config.json, quantize_config.json, quant_config.json.</summary>
public static class CheckpointConfigReader
{
    /// <summary>Reads the configuration of the checkpoint in <paramref name="directory"/>.</summary>
    public static CheckpointConfig Read(string directory)
    {
        string configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath))
        {
            throw new ModelLoadException($"{configPath}: missing; a Hugging Face Llama checkpoint needs config.json beside its weights.");
        }

        using var config = ParseJsonFile(configPath);
        var root = config.RootElement;
        var model = ReadLlamaConfig(configPath, root);
        bool tied = root.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.True;
        var (quantization, baseName) = ReadQuantization(directory, configPath, root);
        return new CheckpointConfig(model, quantization, baseName, tied);
    }

    /// <summary>Converts a config.json object to <see cref="LlamaConfig"/>, checking the architecture and geometry.</summary>
    public static LlamaConfig ReadLlamaConfig(string configPath, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{configPath}: expected a JSON object, found {root.ValueKind}.");
        }

        string? modelType = GetString(root, "model_type");
        var architectures = root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array
            ? archs.EnumerateArray().Where(a => a.ValueKind == JsonValueKind.String).Select(a => a.GetString()!).ToList()
            : [];
        bool isLlama = architectures.Count > 0 ? architectures.Contains("LlamaForCausalLM") : modelType == "llama";
        if (!isLlama || (modelType != null && modelType != "llama"))
        {
            string found = architectures.Count > 0 ? string.Join(", ", architectures) : "none";
            throw new ModelLoadException($"{configPath}: unsupported architecture (architectures: {found}; model_type: {modelType ?? "none"}); expected LlamaForCausalLM / model_type \"llama\".");
        }

        if (root.TryGetProperty("rope_scaling", out var ropeScaling) && ropeScaling.ValueKind != JsonValueKind.Null)
        {
            string kind = ropeScaling.ValueKind == JsonValueKind.Object
                ? GetString(ropeScaling, "rope_type") ?? GetString(ropeScaling, "type") ?? ropeScaling.GetRawText()
                : ropeScaling.GetRawText();
            throw new ModelLoadException($"{configPath}: rope_scaling \"{kind}\" is not supported; only plain RoPE (rope_scaling null or absent) is implemented.");
        }

        string? act = GetString(root, "hidden_act");
        if (act != null && act != "silu")
        {
            throw new ModelLoadException($"{configPath}: hidden_act \"{act}\" is not supported; expected \"silu\".");
        }

        int hidden = RequirePositiveInt(configPath, root, "hidden_size");
        int heads = RequirePositiveInt(configPath, root, "num_attention_heads");
        int kvHeads = root.TryGetProperty("num_key_value_heads", out _) ? RequirePositiveInt(configPath, root, "num_key_value_heads") : heads;
        if (hidden % heads != 0)
        {
            throw new ModelLoadException($"{configPath}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}.");
        }

        if (GetFirstInt(root, "head_dim") is int headDim && headDim != hidden / heads)
        {
            throw new ModelLoadException($"{configPath}: head_dim {headDim} differs from hidden_size / num_attention_heads = {hidden / heads}; only head_dim = hidden / heads is supported.");
        }

        if (heads % kvHeads != 0)
        {
            throw new ModelLoadException($"{configPath}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}.");
        }

        if ((hidden / heads) % 2 != 0)
        {
            throw new ModelLoadException($"{configPath}: head_dim {hidden / heads} is odd; RoPE needs an even head_dim.");
        }

        return new LlamaConfig
        {
            VocabSize = RequirePositiveInt(configPath, root, "vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = RequirePositiveInt(configPath, root, "intermediate_size"),
            NumLayers = RequirePositiveInt(configPath, root, "num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            MaxPositionEmbeddings = root.TryGetProperty("max_position_embeddings", out _) ? RequirePositiveInt(configPath, root, "max_position_embeddings") : 2048,
            RopeTheta = GetFloat(configPath, root, "rope_theta") ?? 10000f,

            // transformers' LlamaConfig default.
            RmsNormEps = GetFloat(configPath, root, "rms_norm_eps") ?? 1e-6f,
            BosTokenId = GetFirstInt(root, "bos_token_id") ?? 1,
            EosTokenId = GetFirstInt(root, "eos_token_id") ?? 2,
        };
    }

    // AutoGPTQ's lookup order: quantize_config.json, quant_config.json, then config.json's quantization_config.
    private static (QuantizationConfig? Config, string? BaseName) ReadQuantization(string directory, string configPath, JsonElement configRoot)
    {
        foreach (string name in new[] { "quantize_config.json", "quant_config.json" })
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path))
            {
                using var document = ParseJsonFile(path);
                return ParseQuantization(path, document.RootElement, requireQuantMethod: false);
            }
        }

        if (configRoot.TryGetProperty("quantization_config", out var embedded) && embedded.ValueKind == JsonValueKind.Object)
        {
            return ParseQuantization(configPath + " (quantization_config)", embedded, requireQuantMethod: true);
        }

        return (null, null);
    }

    private static (QuantizationConfig Config, string? BaseName) ParseQuantization(string where, JsonElement root, bool requireQuantMethod)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{where}: expected a JSON object, found {root.ValueKind}.");
        }

        string? method = GetString(root, "quant_method");
        if ((requireQuantMethod || method != null) && method != "gptq")
        {
            throw new ModelLoadException($"{where}: quant_method \"{method ?? "none"}\" is not supported; only GPTQ (quant_method \"gptq\") checkpoints load.");
        }

        if (!root.TryGetProperty("bits", out var bitsElement) || bitsElement.ValueKind != JsonValueKind.Number || !bitsElement.TryGetInt32(out int bits))
        {
            throw new ModelLoadException($"{where}: missing integer \"bits\".");
        }

        if (bits is not (4 or 8))
        {
            throw new ModelLoadException($"{where}: {bits}-bit GPTQ is not supported; use a 4-bit or 8-bit checkpoint.");
        }

        int groupSize = GetFirstInt(root, "group_size") ?? 128;
        if (groupSize == 0 || groupSize < -1)
        {
            throw new ModelLoadException($"{where}: group_size {groupSize} is invalid; expected a positive size or -1.");
        }

        bool descAct = root.TryGetProperty("desc_act", out var d) && d.ValueKind == JsonValueKind.True;
        bool sym = !root.TryGetProperty("sym", out var s) || s.ValueKind != JsonValueKind.False;
        string? format = GetString(root, "checkpoint_format");
        if (format != null && format != "gptq" && format != "gptq_v2")
        {
            throw new ModelLoadException($"{where}: checkpoint_format \"{format}\" is not supported; expected \"gptq\" or \"gptq_v2\".");
        }

        return (new QuantizationConfig(bits, groupSize, descAct, sym, format == "gptq_v2"), GetString(root, "model_file_base_name"));
    }

    /// <summary>Cap on config.json, quantize_config.json and the shard index (real ones are kilobytes; an index is under 1 MB).</summary>
    public const int MaxJsonFileBytes = 16 * 1024 * 1024;

    internal static JsonDocument ParseJsonFile(string path)
    {
        try
        {
            var bytes = BoundedFile.ReadAllBytes(path, MaxJsonFileBytes);
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
            {
                throw new ModelLoadException($"{path}: not valid UTF-8.");
            }

            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            // Only the position: the parser's message can quote the file's bytes, and the path came from a setting.
            throw new ModelLoadException($"{path}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}).", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"{path}: cannot read ({e.Message}).", e);
        }
    }

    private static string? GetString(JsonElement root, string key) =>
        root.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static int? GetFirstInt(JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var value))
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.Array)
        {
            value = value.EnumerateArray().FirstOrDefault();
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) ? n : null;
    }

    private static float? GetFloat(string configPath, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number)
        {
            throw new ModelLoadException($"{configPath}: \"{key}\" must be a number, found {value.GetRawText()}.");
        }

        return (float)value.GetDouble();
    }

    private static int RequirePositiveInt(string configPath, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var value))
        {
            throw new ModelLoadException($"{configPath}: missing \"{key}\".");
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int n) || n <= 0)
        {
            throw new ModelLoadException($"{configPath}: \"{key}\" must be a positive integer, found {value.GetRawText().ToString(CultureInfo.InvariantCulture)}.");
        }

        return n;
    }
}
