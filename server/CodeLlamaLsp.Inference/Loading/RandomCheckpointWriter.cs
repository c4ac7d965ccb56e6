// Writes a GPTQ (or plain fp16) Llama checkpoint of a real geometry filled with random values, in the
// exact AutoGPTQ layout, so engines and benchmarks can run the 34B shape without the real weights.
// Filling is parallel per 1 MiB block and overlaps the disk write of the previous chunk.
using System.Text.Json.Nodes;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>What to generate.</summary>
/// <param name="Shape">34b, 13b, 7b or tiny (see <see cref="CheckpointShapes"/>).</param>
/// <param name="Bits">4 or 8 for GPTQ; 16 for an unquantized fp16 checkpoint.</param>
/// <param name="GroupSize">GPTQ group size, or -1 for one group per column.</param>
/// <param name="ActOrder">Write a permutation-based g_idx (desc_act true).</param>
/// <param name="TokenizerPath">A tokenizer.model to copy beside the weights, or null.</param>
public sealed record RandomCheckpointOptions(string Shape, int Bits = 4, int GroupSize = 128, bool ActOrder = false, ulong Seed = 1, string? TokenizerPath = null);

/// <summary>Generates random checkpoints (config.json, quantize_config.json, model.safetensors).</summary>
public static class RandomCheckpointWriter
{
    private const int ChunkBytes = 64 << 20;

    /// <summary>Checks the options; throws ArgumentException with a one-line reason.</summary>
    public static LlamaConfig Validate(RandomCheckpointOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = CheckpointShapes.Get(options.Shape);
        if (options.Bits is not (4 or 8 or 16))
        {
            throw new ArgumentException($"--bits {options.Bits} is not supported; expected 4 or 8 (GPTQ) or 16 (fp16).", nameof(options));
        }

        if (options.Bits != 16)
        {
            if (options.GroupSize == 0 || options.GroupSize < -1)
            {
                throw new ArgumentException($"--group {options.GroupSize} is invalid; expected a positive group size or -1.", nameof(options));
            }

            int perWord = 32 / options.Bits;
            foreach (int width in new[] { config.HiddenSize, config.IntermediateSize, config.NumKvHeads * config.HeadDim })
            {
                if (width % perWord != 0)
                {
                    throw new ArgumentException($"shape {options.Shape}: width {width} cannot be packed {perWord} per word at {options.Bits} bits.", nameof(options));
                }
            }
        }

        if (options.TokenizerPath != null && !File.Exists(options.TokenizerPath))
        {
            throw new ArgumentException($"--tokenizer {options.TokenizerPath}: file not found.", nameof(options));
        }

        return config;
    }

    /// <summary>Writes the checkpoint into <paramref name="outputDirectory"/> (created if needed; files overwritten).</summary>
    public static async Task WriteAsync(string outputDirectory, RandomCheckpointOptions options, IProgress<LoadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var config = Validate(options);
        Directory.CreateDirectory(outputDirectory);
        var plans = PlanTensors(config, options);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var writer = new SafetensorsWriter(Path.Combine(outputDirectory, "model.safetensors"), plans.Select(p => p.Spec), metadata);
        await using (writer.ConfigureAwait(false))
        {
            var fillOf = plans.ToDictionary(p => p.Spec.Name, p => p.Fill, StringComparer.Ordinal);
            var chunks = new List<Chunk>();
            for (int t = 0; t < writer.Order.Count; t++)
            {
                var spec = writer.Order[t];
                for (long offset = 0; offset < spec.ByteLength; offset += ChunkBytes)
                {
                    chunks.Add(new Chunk(t, fillOf[spec.Name], offset, (int)Math.Min(ChunkBytes, spec.ByteLength - offset), offset + ChunkBytes >= spec.ByteLength ? 1 : 0));
                }
            }

            await WriteChunksAsync(writer, chunks, options.Seed, progress, cancellationToken).ConfigureAwait(false);
            writer.Complete();
        }

        await File.WriteAllTextAsync(Path.Combine(outputDirectory, "config.json"), ConfigJson(config, options), cancellationToken).ConfigureAwait(false);
        string quantizePath = Path.Combine(outputDirectory, "quantize_config.json");
        if (options.Bits == 16)
        {
            File.Delete(quantizePath);
        }
        else
        {
            await File.WriteAllTextAsync(quantizePath, QuantizeConfig(options).ToJsonString(JsonOptions), cancellationToken).ConfigureAwait(false);
        }

        if (options.TokenizerPath != null)
        {
            // The source may be read-only (fixtures, HF blobs); the copy should not inherit that.
            string tokenizerCopy = Path.Combine(outputDirectory, "tokenizer.model");
            File.Copy(options.TokenizerPath, tokenizerCopy, overwrite: true);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(tokenizerCopy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            }
        }
    }

    // Fill chunk i+1 on the thread pool while chunk i goes to disk.
    private static async Task WriteChunksAsync(SafetensorsWriter writer, List<Chunk> chunks, ulong seed, IProgress<LoadProgress>? progress, CancellationToken cancellationToken)
    {
        int capacity = chunks.Count == 0 ? 0 : chunks.Max(c => c.Length);
        var current = new byte[capacity];
        var spare = new byte[capacity];
        int tensorsDone = 0;
        Task? filling = chunks.Count > 0 ? FillAsync(chunks[0], current, seed) : null;
        for (int i = 0; i < chunks.Count; i++)
        {
            await filling!.ConfigureAwait(false);
            var buffer = current;
            filling = i + 1 < chunks.Count ? FillAsync(chunks[i + 1], spare, seed) : null;
            await writer.WriteAsync(buffer.AsMemory(0, chunks[i].Length), cancellationToken).ConfigureAwait(false);
            tensorsDone += chunks[i].EndsTensor;
            progress?.Report(new LoadProgress(writer.BytesWritten, writer.DataLength, tensorsDone, writer.Order.Count, "Writing model.safetensors"));
            (current, spare) = (spare, current);
        }
    }

    private static Task FillAsync(Chunk chunk, byte[] buffer, ulong seed) => Task.Run(() =>
    {
        int blocks = (chunk.Length + RandomTensorFill.BlockBytes - 1) / RandomTensorFill.BlockBytes;
        Parallel.For(0, blocks, b =>
        {
            int start = b * RandomTensorFill.BlockBytes;
            int length = Math.Min(RandomTensorFill.BlockBytes, chunk.Length - start);
            long tensorOffset = chunk.Offset + start;
            var random = Xorshift64Star.For(seed, chunk.Tensor, tensorOffset / RandomTensorFill.BlockBytes);
            chunk.Fill.FillBlock(buffer.AsSpan(start, length), tensorOffset, ref random);
        });
    });

    private static List<(SafetensorsTensorSpec Spec, RandomTensorFill Fill)> PlanTensors(LlamaConfig c, RandomCheckpointOptions options)
    {
        // Embedding and lm_head entries of width 2/sqrt(hidden) keep logits of order 1 after the final norm.
        var matrix = new RandomTensorFill.UniformHalf(0f, 2f / MathF.Sqrt(c.HiddenSize));
        var norm = new RandomTensorFill.UniformHalf(1f, 0.1f);
        var plans = new List<(SafetensorsTensorSpec, RandomTensorFill)>
        {
            (new("model.embed_tokens.weight", TensorDType.F16, [c.VocabSize, c.HiddenSize]), matrix),
            (new("model.norm.weight", TensorDType.F16, [c.HiddenSize]), norm),
            (new("lm_head.weight", TensorDType.F16, [c.VocabSize, c.HiddenSize]), matrix),
        };
        var permutationRandom = new Xorshift64Star(Xorshift64Star.SplitMix(options.Seed) ^ 0x5EED);
        int kv = c.NumKvHeads * c.HeadDim;
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            plans.Add((new(p + "input_layernorm.weight", TensorDType.F16, [c.HiddenSize]), norm));
            plans.Add((new(p + "post_attention_layernorm.weight", TensorDType.F16, [c.HiddenSize]), norm));
            foreach (var (name, inFeatures, outFeatures) in new[]
            {
                ("self_attn.q_proj", c.HiddenSize, c.NumHeads * c.HeadDim),
                ("self_attn.k_proj", c.HiddenSize, kv),
                ("self_attn.v_proj", c.HiddenSize, kv),
                ("self_attn.o_proj", c.NumHeads * c.HeadDim, c.HiddenSize),
                ("mlp.gate_proj", c.HiddenSize, c.IntermediateSize),
                ("mlp.up_proj", c.HiddenSize, c.IntermediateSize),
                ("mlp.down_proj", c.IntermediateSize, c.HiddenSize),
            })
            {
                AddLinear(plans, p + name, inFeatures, outFeatures, options, ref permutationRandom);
            }
        }

        return plans;
    }

    // Scales of 1 / (std(q) * sqrt(in)) make each linear roughly preserve the activations' RMS, so the
    // residual stream stays far from fp16 overflow even through 48 layers.
    private static void AddLinear(List<(SafetensorsTensorSpec, RandomTensorFill)> plans, string prefix, int inFeatures, int outFeatures, RandomCheckpointOptions options, ref Xorshift64Star permutationRandom)
    {
        if (options.Bits == 16)
        {
            plans.Add((new(prefix + ".weight", TensorDType.F16, [outFeatures, inFeatures]), new RandomTensorFill.UniformHalf(0f, MathF.Sqrt(3f / inFeatures))));
            return;
        }

        int bits = options.Bits;
        int perWord = 32 / bits;
        int groupSize = options.GroupSize == -1 ? inFeatures : options.GroupSize;
        int groups = (inFeatures + groupSize - 1) / groupSize;
        float levels = 1 << bits;
        float scale = 1f / (MathF.Sqrt(((levels * levels) - 1f) / 12f) * MathF.Sqrt(inFeatures));

        // v1 format stores zero - 1: the mid value 2^(bits-1) is written as 7 (4-bit) or 127 (8-bit) in every slot.
        uint stored = (1u << (bits - 1)) - 1;
        uint zeroWord = 0;
        for (int k = 0; k < perWord; k++)
        {
            zeroWord |= stored << (k * bits);
        }

        plans.Add((new(prefix + ".qweight", TensorDType.I32, [inFeatures / perWord, outFeatures]), new RandomTensorFill.RandomWords()));
        plans.Add((new(prefix + ".qzeros", TensorDType.I32, [groups, outFeatures / perWord]), new RandomTensorFill.ConstantWord(zeroWord)));
        plans.Add((new(prefix + ".scales", TensorDType.F16, [groups, outFeatures]), new RandomTensorFill.UniformHalf(scale, 0.25f * scale)));
        plans.Add((new(prefix + ".g_idx", TensorDType.I32, [inFeatures]), new RandomTensorFill.Int32Table(GroupIndex(inFeatures, groupSize, options.ActOrder, ref permutationRandom))));
    }

    // Act-order quantizes rows in a permuted order and assigns groups along it: g_idx[perm[i]] = i / G.
    private static int[] GroupIndex(int inFeatures, int groupSize, bool actOrder, ref Xorshift64Star random)
    {
        var order = Enumerable.Range(0, inFeatures).ToArray();
        if (actOrder)
        {
            for (int i = inFeatures - 1; i > 0; i--)
            {
                int j = random.NextInt(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }

        var gIdx = new int[inFeatures];
        for (int i = 0; i < inFeatures; i++)
        {
            gIdx[order[i]] = i / groupSize;
        }

        return gIdx;
    }

    private static string ConfigJson(LlamaConfig c, RandomCheckpointOptions options)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["bos_token_id"] = c.BosTokenId,
            ["eos_token_id"] = c.EosTokenId,
            ["hidden_act"] = "silu",
            ["hidden_size"] = c.HiddenSize,
            ["intermediate_size"] = c.IntermediateSize,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["num_attention_heads"] = c.NumHeads,
            ["num_hidden_layers"] = c.NumLayers,
            ["num_key_value_heads"] = c.NumKvHeads,
            ["rms_norm_eps"] = c.RmsNormEps,
            ["rope_theta"] = c.RopeTheta,
            ["rope_scaling"] = null,
            ["tie_word_embeddings"] = false,
            ["torch_dtype"] = "float16",
            ["vocab_size"] = c.VocabSize,
        };
        if (options.Bits != 16)
        {
            var quantization = QuantizeConfig(options);
            quantization["quant_method"] = "gptq";
            json["quantization_config"] = quantization;
        }

        return json.ToJsonString(JsonOptions);
    }

    private static JsonObject QuantizeConfig(RandomCheckpointOptions options) => new()
    {
        ["bits"] = options.Bits,
        ["group_size"] = options.GroupSize,
        ["damp_percent"] = 0.1,
        ["desc_act"] = options.ActOrder,
        ["static_groups"] = false,
        ["sym"] = true,
        ["true_sequential"] = true,
        ["model_name_or_path"] = null,
        ["model_file_base_name"] = "model",
    };

    private static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private sealed record Chunk(int Tensor, RandomTensorFill Fill, long Offset, int Length, int EndsTensor);
}
