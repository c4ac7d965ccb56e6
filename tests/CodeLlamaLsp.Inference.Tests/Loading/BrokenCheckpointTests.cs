// Each test breaks a copy of a fixture in one specific way and checks that loading fails with a
// ModelLoadException whose message names the file, the tensor and what was expected.
using System.Text.Json.Nodes;
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Inference.Tests.Loading;

public class BrokenCheckpointTests
{
    private const string QProj = "model.layers.0.self_attn.q_proj";

    private static void Check(TempFolder folder, params string[] fragments)
    {
        var error = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(folder.Path).Dispose());
        foreach (string fragment in fragments)
        {
            Assert.That(error!.Message, Does.Contain(fragment));
        }
    }

    [Test]
    public void Truncated_file_names_the_tensor_past_the_end()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        using (var stream = new FileStream(weights, FileMode.Open))
        {
            stream.SetLength(stream.Length - 1000);
        }

        Check(folder, weights, "'model.norm.weight'", "out of range", "truncated");
    }

    [Test]
    public void Corrupt_header_json_is_reported_as_such()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[8] = (byte)'#';
        File.WriteAllBytes(weights, bytes);

        Check(folder, weights, "not valid JSON");
    }

    [Test]
    public void Header_length_past_end_of_file()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        BitConverter.GetBytes((ulong)bytes.Length).CopyTo(bytes, 0);
        File.WriteAllBytes(weights, bytes);

        Check(folder, weights, $"header length {bytes.Length}", "past the end");
    }

    [Test]
    public void Too_short_file()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        File.WriteAllBytes(folder.File("model.safetensors"), [1, 2, 3]);

        Check(folder, "model.safetensors", "too short");
    }

    [Test]
    public void Offsets_out_of_range()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        long dataLength = new FileInfo(weights).Length;
        CheckpointSurgery.EditHeader(weights, h => CheckpointSurgery.SetOffsets(h, QProj + ".g_idx", dataLength, dataLength + 4096));

        Check(folder, weights, $"'{QProj}.g_idx'", "out of range");
    }

    [Test]
    public void Offsets_that_disagree_with_dtype_and_shape()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.EditHeader(weights, h => CheckpointSurgery.Entry(h, QProj + ".g_idx")["shape"] = new JsonArray(1000));

        Check(folder, weights, $"'{QProj}.g_idx'", "span 4096 bytes", "needs 4000");
    }

    [Test]
    public void Overlapping_tensors_are_named_both()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.EditHeader(weights, h =>
        {
            var (begin, end) = CheckpointSurgery.Offsets(h, "model.layers.0.self_attn.k_proj.g_idx");
            CheckpointSurgery.SetOffsets(h, "model.layers.0.self_attn.o_proj.g_idx", begin + 4, end + 4);
        });

        Check(folder, weights, "overlap", "k_proj.g_idx", "o_proj.g_idx");
    }

    [Test]
    public void Unknown_dtype_in_header()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.EditHeader(weights, h => CheckpointSurgery.Entry(h, "model.norm.weight")["dtype"] = "F8_E4M3");

        Check(folder, weights, "'model.norm.weight'", "unknown dtype \"F8_E4M3\"");
    }

    [Test]
    public void Wrong_dtype_for_scales()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.EditHeader(weights, h => CheckpointSurgery.Entry(h, QProj + ".scales")["dtype"] = "I16");

        Check(folder, weights, $"'{QProj}.scales'", "expected F16 [8, 1024], found I16 [8, 1024]");
    }

    [Test]
    public void Wrong_shape_for_qweight()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.EditHeader(weights, h => CheckpointSurgery.Entry(h, QProj + ".qweight")["shape"] = new JsonArray(256, 512));

        Check(folder, weights, $"'{QProj}.qweight'", "expected I32 [128, 1024], found I32 [256, 512]");
    }

    [Test]
    public void Missing_tensor_is_named_with_its_expected_shape()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.EditHeader(weights, h => h.Remove("model.layers.1.self_attn.v_proj.qzeros"));

        Check(folder, weights, "missing tensor 'model.layers.1.self_attn.v_proj.qzeros'", "expected I32 [8, 16]", "4-bit");
    }

    [Test]
    public void Group_index_out_of_range()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        string weights = folder.File("model.safetensors");
        CheckpointSurgery.PatchData(weights, QProj + ".g_idx", 4 * 5, BitConverter.GetBytes(8));

        Check(folder, weights, $"'{QProj}.g_idx'", "expected group indices in [0, 7], found 8 at row 5");
    }

    [Test]
    public void Missing_config()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Delete(folder.File("config.json"));

        Check(folder, folder.File("config.json"), "missing");
    }

    [Test]
    public void Config_linked_to_an_endless_device_is_refused_at_its_size_cap()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Delete(folder.File("config.json"));
        File.CreateSymbolicLink(folder.File("config.json"), "/dev/zero");
        long before = GC.GetAllocatedBytesForCurrentThread();

        Check(folder, folder.File("config.json"), "limit");
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(3L * CheckpointConfigReader.MaxJsonFileBytes), "bounded by the cap, not by the device");
    }

    [Test]
    public void Config_that_is_not_json_is_reported_by_position_without_its_content()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.WriteAllText(folder.File("config.json"), "root:x:0:0:secret-line\n");

        var error = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(folder.Path).Dispose())!;
        Assert.That(error.Message, Does.Contain("not valid JSON (line 1").And.Not.Contain("root").And.Not.Contain("'r'"));
    }

    [Test]
    public void Tokenizer_linked_to_an_endless_device_is_refused_at_its_size_cap()
    {
        using var folder = new TempFolder();
        File.CreateSymbolicLink(folder.File("tokenizer.model"), "/dev/zero");

        Assert.That(() => CodeLlamaLsp.Inference.Tokenization.SentencePieceModel.Load(folder.File("tokenizer.model")), Throws.TypeOf<InvalidDataException>().With.Message.Contains("limit"));
    }

    [Test]
    public void Unsupported_architecture()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        CheckpointSurgery.EditJson(folder.File("config.json"), c =>
        {
            c["architectures"] = new JsonArray("MistralForCausalLM");
            c["model_type"] = "mistral";
        });

        Check(folder, folder.File("config.json"), "unsupported architecture", "MistralForCausalLM", "LlamaForCausalLM");
    }

    [TestCase(3)]
    [TestCase(2)]
    public void Low_bit_gptq_is_refused(int bits)
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        CheckpointSurgery.EditJson(folder.File("quantize_config.json"), q => q["bits"] = bits);

        Check(folder, folder.File("quantize_config.json"), $"{bits}-bit GPTQ is not supported");
    }

    [Test]
    public void Rope_scaling_is_refused_naming_its_kind()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = 2.0 });

        Check(folder, folder.File("config.json"), "rope_scaling \"linear\" is not supported");
    }

    [Test]
    public void Inconsistent_head_dim_is_refused()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c["head_dim"] = 64);

        Check(folder, "head_dim 64", "hidden_size / num_attention_heads = 128");
    }

    [Test]
    public void Other_quantization_methods_are_refused()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Delete(folder.File("quantize_config.json"));
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c["quantization_config"]!["quant_method"] = "awq");

        Check(folder, "quant_method \"awq\" is not supported");
    }

    [Test]
    public void Packed_weights_without_quantization_config()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Delete(folder.File("quantize_config.json"));
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c.Remove("quantization_config"));

        Check(folder, "'model.layers.0.self_attn.q_proj.qweight' is GPTQ-packed", "no quantization config");
    }

    [Test]
    public void Missing_shard_is_named_with_a_tensor_it_holds()
    {
        using var folder = Fixtures.Copy(Fixtures.Tiny);
        File.Delete(folder.File("model-00002-of-00002.safetensors"));

        Check(folder, "model.safetensors.index.json", "shard \"model-00002-of-00002.safetensors\"", "is missing", "holding tensor '");
    }

    [Test]
    public void Index_pointing_at_the_wrong_shard()
    {
        using var folder = Fixtures.Copy(Fixtures.Tiny);
        CheckpointSurgery.EditJson(folder.File("model.safetensors.index.json"), i => i["weight_map"]!["model.norm.weight"] = "model-00002-of-00002.safetensors");

        Check(folder, "model-00002-of-00002.safetensors", "'model.norm.weight'", "not in its header");
    }

    [Test]
    public void Folder_without_weights()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Delete(folder.File("model.safetensors"));

        Check(folder, "no weights found", "model.safetensors", "model.safetensors.index.json");
    }
}
