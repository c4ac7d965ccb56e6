// Where the quantization settings come from (AutoGPTQ's lookup order), the gptq_v2 flag, and how the
// weight file is found from model_file_base_name.
using System.Text.Json.Nodes;
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Inference.Tests.Loading;

public class CheckpointConfigTests
{
    [Test]
    public void Quantization_falls_back_to_config_json()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini8Bit);
        File.Delete(folder.File("quantize_config.json"));
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c["quantization_config"]!["checkpoint_format"] = "gptq_v2");

        var config = CheckpointConfigReader.Read(folder.Path);

        Assert.That(config.Quantization, Is.EqualTo(new Model.QuantizationConfig(8, -1, DescAct: true, Symmetric: true, ZerosAreV2: true)));
    }

    [Test]
    public void Quantize_config_json_wins_over_config_json()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c["quantization_config"]!["bits"] = 8);

        Assert.That(CheckpointConfigReader.Read(folder.Path).Quantization!.Bits, Is.EqualTo(4));
    }

    [Test]
    public void Quant_config_json_is_read_when_quantize_config_json_is_absent()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Move(folder.File("quantize_config.json"), folder.File("quant_config.json"));
        CheckpointSurgery.EditJson(folder.File("quant_config.json"), q => q["checkpoint_format"] = "gptq_v2");
        CheckpointSurgery.EditJson(folder.File("config.json"), c => c.Remove("quantization_config"));

        using var model = ModelLoader.Load(folder.Path);

        Assert.That(((Model.GptqLinearWeights)model.Weights.Layers[0].QProj).ZerosAreV2, Is.True);
    }

    [Test]
    public void Model_file_base_name_selects_the_weight_file()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Move(folder.File("model.safetensors"), folder.File("gptq_model-4bit-128g.safetensors"));
        File.WriteAllText(folder.File("decoy.safetensors"), "not used");
        CheckpointSurgery.EditJson(folder.File("quantize_config.json"), q => q["model_file_base_name"] = "gptq_model-4bit-128g");

        using var model = ModelLoader.Load(folder.Path);

        Assert.That(model.WeightFiles, Is.EqualTo(new[] { folder.File("gptq_model-4bit-128g.safetensors") }));
    }

    [Test]
    public void Single_unnamed_weight_file_is_used()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        File.Move(folder.File("model.safetensors"), folder.File("gptq_model-4bit-128g.safetensors"));

        using var model = ModelLoader.Load(folder.Path);

        Assert.That(model.WeightFiles, Has.Count.EqualTo(1));
    }

    [Test]
    public void Config_defaults_follow_transformers()
    {
        using var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        CheckpointSurgery.EditJson(folder.File("config.json"), c =>
        {
            c.Remove("num_key_value_heads");
            c.Remove("rope_theta");
            c.Remove("rms_norm_eps");
            c.Remove("rope_scaling");
            c["eos_token_id"] = new JsonArray(2, 32010);
        });

        var config = CheckpointConfigReader.Read(folder.Path).Model;

        Assert.Multiple(() =>
        {
            Assert.That(config.NumKvHeads, Is.EqualTo(config.NumHeads));
            Assert.That(config.RopeTheta, Is.EqualTo(10000f));
            Assert.That(config.RmsNormEps, Is.EqualTo(1e-6f));
            Assert.That(config.EosTokenId, Is.EqualTo(2));
        });
    }
}

public class LinearBiasTests
{
    private const string Layer = "model.layers.0.self_attn.";

    [Test]
    public void Nonzero_bias_is_kept_and_all_zero_bias_is_dropped()
    {
        using var folder = WithBiases(new Half[1024].Select((_, i) => (Half)(i % 7)).ToArray(), new Half[128]);
        using var model = ModelLoader.Load(folder.Path);

        var q = (Model.GptqLinearWeights)model.Weights.Layers[0].QProj;
        var k = (Model.GptqLinearWeights)model.Weights.Layers[0].KProj;
        Assert.Multiple(() =>
        {
            Assert.That(q.Bias!.ToFloat32()[6], Is.EqualTo(6f));
            Assert.That(k.Bias, Is.Null);
        });
    }

    [Test]
    public void Bias_of_the_wrong_length_is_refused()
    {
        using var folder = WithBiases(new Half[1024], new Half[64]);

        var error = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(folder.Path).Dispose());
        Assert.That(error!.Message, Does.Contain($"'{Layer}k_proj.bias'").And.Contain("expected F16 [128], found F16 [64]"));
    }

    // Rewrites the mini fixture's weights with q_proj and k_proj biases added.
    private static TempFolder WithBiases(Half[] qBias, Half[] kBias)
    {
        var folder = Fixtures.Copy(Fixtures.Mini4Bit);
        string weights = folder.File("model.safetensors");
        var tensors = new List<Model.TensorData>();
        using (var file = SafetensorsFile.Open(weights))
        {
            foreach (var entry in file.Entries)
            {
                var t = file.GetTensor(entry.Name);
                tensors.Add(new Model.TensorData(t.Name, t.DType, t.Shape, t.Data.ToArray()));
            }
        }

        tensors.Add(Model.TensorData.FromArray(Layer + "q_proj.bias", Model.TensorDType.F16, [qBias.Length], qBias));
        tensors.Add(Model.TensorData.FromArray(Layer + "k_proj.bias", Model.TensorDType.F16, [kBias.Length], kBias));
        SafetensorsWriter.WriteFile(weights, tensors);
        return folder;
    }
}
