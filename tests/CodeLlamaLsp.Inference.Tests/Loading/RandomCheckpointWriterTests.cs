// Generated checkpoints load back through ModelLoader with the requested layout, are deterministic
// per seed, and hold GPTQ values with the intended structure (symmetric zeros, act-order groups).
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Loading;

public class RandomCheckpointWriterTests
{
    [Test]
    public async Task Tiny_4bit_g32_round_trips_through_the_loader()
    {
        using var folder = new TempFolder();
        var reports = new List<LoadProgress>();
        string tokenizer = Path.Combine(Fixtures.Path(Fixtures.Tiny), "tokenizer.model");
        await RandomCheckpointWriter.WriteAsync(folder.Path, new RandomCheckpointOptions("tiny", 4, 32, TokenizerPath: tokenizer), new SynchronousProgress<LoadProgress>(reports.Add));

        using var model = ModelLoader.Load(folder.Path);
        using var fixture = ModelLoader.Load(Fixtures.Path(Fixtures.Tiny));
        Assert.Multiple(() =>
        {
            Assert.That(model.Config, Is.EqualTo(fixture.Config));
            Assert.That(model.Quantization, Is.EqualTo(new QuantizationConfig(4, 32, DescAct: false, Symmetric: true, ZerosAreV2: false)));
            Assert.That(model.WeightBytes, Is.EqualTo(fixture.WeightBytes));
            Assert.That(model.TokenizerPath, Is.Not.Null);
            Assert.That(reports[^1].BytesDone, Is.EqualTo(reports[^1].BytesTotal));
            Assert.That(reports[^1].TensorsDone, Is.EqualTo(reports[^1].TensorsTotal));
        });
        for (int i = 0; i < 2; i++)
        {
            var mine = (GptqLinearWeights)model.Weights.Layers[i].DownProj;
            var theirs = (GptqLinearWeights)fixture.Weights.Layers[i].DownProj;
            Assert.That(new[] { mine.QWeight.Shape, mine.QZeros.Shape, mine.Scales.Shape, mine.GIdx!.Shape }, Is.EqualTo(new[] { theirs.QWeight.Shape, theirs.QZeros.Shape, theirs.Scales.Shape, theirs.GIdx!.Shape }));
            Assert.That(mine.GIdx.As<int>().ToArray(), Is.EqualTo(theirs.GIdx.As<int>().ToArray()), "without act-order g_idx[k] = k / G");
        }

        var q = (GptqLinearWeights)model.Weights.Layers[0].QProj;
        Assert.Multiple(() =>
        {
            Assert.That(q.QZeros.As<uint>().ToArray(), Is.All.EqualTo(0x77777777u));
            Assert.That(q.Scales.ToFloat32(), Is.All.InRange(0.75f * 0.0191f, 1.25f * 0.0192f));
            Assert.That(q.QWeight.As<uint>().ToArray().Distinct().Count(), Is.GreaterThan(1000));
        });
    }

    [Test]
    public async Task Eight_bit_ungrouped_act_order_round_trips()
    {
        using var folder = new TempFolder();
        await RandomCheckpointWriter.WriteAsync(folder.Path, new RandomCheckpointOptions("tiny", 8, -1, ActOrder: true, Seed: 7));

        using var model = ModelLoader.Load(folder.Path);
        var down = (GptqLinearWeights)model.Weights.Layers[1].DownProj;
        Assert.Multiple(() =>
        {
            Assert.That(model.Quantization, Is.EqualTo(new QuantizationConfig(8, -1, DescAct: true, Symmetric: true, ZerosAreV2: false)));
            Assert.That((down.InFeatures, down.GroupSize), Is.EqualTo((352, 352)));
            Assert.That(down.QWeight.Shape, Is.EqualTo(new long[] { 88, 128 }));
            Assert.That(down.Scales.Shape, Is.EqualTo(new long[] { 1, 128 }));
            Assert.That(down.QZeros.As<uint>().ToArray(), Is.All.EqualTo(0x7F7F7F7Fu));
            Assert.That(down.GIdx!.As<int>().ToArray(), Is.All.Zero);
        });
    }

    [Test]
    public async Task Act_order_group_index_is_permuted_with_full_groups()
    {
        using var folder = new TempFolder();
        await RandomCheckpointWriter.WriteAsync(folder.Path, new RandomCheckpointOptions("tiny", 4, 32, ActOrder: true));

        using var model = ModelLoader.Load(folder.Path);
        var gIdx = ((GptqLinearWeights)model.Weights.Layers[0].GateProj).GIdx!.As<int>().ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(gIdx, Is.Not.Ordered);
            Assert.That(gIdx.GroupBy(g => g).Select(g => g.Count()), Is.All.EqualTo(32));
        });
    }

    [Test]
    public async Task Fp16_checkpoint_loads_as_dense_linears()
    {
        using var folder = new TempFolder();
        await RandomCheckpointWriter.WriteAsync(folder.Path, new RandomCheckpointOptions("tiny", Bits: 16));

        using var model = ModelLoader.Load(folder.Path);
        var up = (DenseLinearWeights)model.Weights.Layers[0].UpProj;
        Assert.Multiple(() =>
        {
            Assert.That(model.Quantization, Is.Null);
            Assert.That(up.Weight.Shape, Is.EqualTo(new long[] { 352, 128 }));
            Assert.That(up.Weight.DType, Is.EqualTo(TensorDType.F16));
            Assert.That(File.Exists(Path.Combine(folder.Path, "quantize_config.json")), Is.False);
        });
    }

    [Test]
    public async Task Same_seed_gives_identical_files_and_another_seed_differs()
    {
        using var a = new TempFolder();
        using var b = new TempFolder();
        using var c = new TempFolder();
        await RandomCheckpointWriter.WriteAsync(a.Path, new RandomCheckpointOptions("tiny", ActOrder: true, Seed: 3));
        await RandomCheckpointWriter.WriteAsync(b.Path, new RandomCheckpointOptions("tiny", ActOrder: true, Seed: 3));
        await RandomCheckpointWriter.WriteAsync(c.Path, new RandomCheckpointOptions("tiny", ActOrder: true, Seed: 4));

        // SequenceEqual: NUnit's element-wise collection comparison is far too slow for 16 MB.
        var first = await File.ReadAllBytesAsync(a.File("model.safetensors"));
        var same = await File.ReadAllBytesAsync(b.File("model.safetensors"));
        var other = await File.ReadAllBytesAsync(c.File("model.safetensors"));
        Assert.Multiple(() =>
        {
            Assert.That(same.AsSpan().SequenceEqual(first), Is.True);
            Assert.That(other.Length, Is.EqualTo(first.Length));
            Assert.That(other.AsSpan().SequenceEqual(first), Is.False);
        });
    }

    [TestCase("70b", 4, 128, "unknown shape '70b'")]
    [TestCase("tiny", 3, 128, "--bits 3")]
    [TestCase("tiny", 4, 0, "--group 0")]
    public void Bad_options_are_refused(string shape, int bits, int group, string message)
    {
        Assert.That(() => RandomCheckpointWriter.Validate(new RandomCheckpointOptions(shape, bits, group)), Throws.ArgumentException.With.Message.Contains(message));
    }

    [Test]
    public void Shapes_match_the_codellama_table()
    {
        var c34 = CheckpointShapes.Get("34b");
        Assert.Multiple(() =>
        {
            Assert.That((c34.HiddenSize, c34.IntermediateSize, c34.NumLayers, c34.NumHeads, c34.NumKvHeads, c34.HeadDim, c34.VocabSize), Is.EqualTo((8192, 22016, 48, 64, 8, 128, 32000)));
            Assert.That(CheckpointShapes.Get("13b").VocabSize, Is.EqualTo(32016));
            Assert.That(CheckpointShapes.Get("7B").NumLayers, Is.EqualTo(32));
        });
    }
}
