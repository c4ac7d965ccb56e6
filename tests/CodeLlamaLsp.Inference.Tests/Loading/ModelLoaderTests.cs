// Loads the real GPTQ fixtures and checks the shapes, quantization settings and progress the loader reports.
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Loading;

public class ModelLoaderTests
{
    [Test]
    public void Sharded_tiny_fixture_loads_with_config_shapes_and_tokenizer()
    {
        using var model = ModelLoader.Load(Fixtures.Path(Fixtures.Tiny));

        var c = model.Config;
        Assert.Multiple(() =>
        {
            Assert.That((c.VocabSize, c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.NumKvHeads, c.HeadDim), Is.EqualTo((32000, 128, 352, 2, 4, 2, 32)));
            Assert.That(c.RopeTheta, Is.EqualTo(1e6f));
            Assert.That(c.RmsNormEps, Is.EqualTo(1e-5f));
            Assert.That(model.Weights.Quantization, Is.EqualTo(new QuantizationConfig(4, 32, DescAct: false, Symmetric: false, ZerosAreV2: false)));
            Assert.That(model.WeightFiles, Has.Count.EqualTo(2));
            Assert.That(model.TokenizerPath, Does.EndWith("tokenizer.model"));
            Assert.That(model.Name, Is.EqualTo(Fixtures.Tiny));
            Assert.That(model.WeightBytes, Is.EqualTo(16607360));
            Assert.That(model.Weights.Layers, Has.Count.EqualTo(2));
            Assert.That(model.Weights.Embedding.Shape, Is.EqualTo(new long[] { 32000, 128 }));
            Assert.That(model.Weights.LmHead.Shape, Is.EqualTo(new long[] { 32000, 128 }));
        });

        var k = (GptqLinearWeights)model.Weights.Layers[1].KProj;
        Assert.Multiple(() =>
        {
            Assert.That((k.InFeatures, k.OutFeatures, k.Bits, k.GroupSize), Is.EqualTo((128, 64, 4, 32)));
            Assert.That(k.QWeight.Shape, Is.EqualTo(new long[] { 16, 64 }));
            Assert.That(k.QZeros.Shape, Is.EqualTo(new long[] { 4, 8 }));
            Assert.That(k.Scales.Shape, Is.EqualTo(new long[] { 4, 64 }));
            Assert.That(k.GIdx!.As<int>().ToArray(), Is.EqualTo(Enumerable.Range(0, 128).Select(i => i / 32).ToArray()));
        });
    }

    [Test]
    public void Mapped_bytes_match_the_file_contents()
    {
        using var model = ModelLoader.Load(Fixtures.Path(Fixtures.Mini4Bit));
        var norm = model.Weights.FinalNorm;
        var entry = ReadEntryBytes(System.IO.Path.Combine(Fixtures.Path(Fixtures.Mini4Bit), "model.safetensors"), "model.norm.weight");

        Assert.That(norm.Data.ToArray(), Is.EqualTo(entry));
    }

    [TestCase(Fixtures.Mini4Bit, 4, 128, 8, 11)]
    [TestCase(Fixtures.Mini8Bit, 8, 1024, 1, 1)]
    public void Act_order_fixtures_load_with_permuted_group_index(string fixture, int bits, int effectiveGroup, int qGroups, int downGroups)
    {
        using var model = ModelLoader.Load(Fixtures.Path(fixture));

        var layer = model.Weights.Layers[0];
        var q = (GptqLinearWeights)layer.QProj;
        var down = (GptqLinearWeights)layer.DownProj;
        Assert.Multiple(() =>
        {
            Assert.That(model.Config.HeadDim, Is.EqualTo(128));
            Assert.That(model.Config.GroupSize, Is.EqualTo(8));
            Assert.That(model.Weights.Quantization!.DescAct, Is.True);
            Assert.That(model.Weights.Quantization.Bits, Is.EqualTo(bits));
            Assert.That(q.GroupSize, Is.EqualTo(effectiveGroup));
            Assert.That(q.QWeight.Shape, Is.EqualTo(new long[] { 1024 * bits / 32, 1024 }));
            Assert.That(q.Scales.Shape, Is.EqualTo(new long[] { qGroups, 1024 }));
            Assert.That(down.InFeatures, Is.EqualTo(1408));
            Assert.That(down.Scales.Shape, Is.EqualTo(new long[] { downGroups, 1024 }));
            Assert.That(model.TokenizerPath, Is.Null);
        });
        if (qGroups > 1)
        {
            var gIdx = q.GIdx!.As<int>().ToArray();
            Assert.That(gIdx, Is.Not.Ordered, "act-order g_idx should be non-monotonic");
        }
    }

    [Test]
    public void Progress_reaches_all_bytes_and_tensors_in_order()
    {
        var reports = new List<LoadProgress>();
        using var model = ModelLoader.Load(Fixtures.Path(Fixtures.Tiny), progress: new SynchronousProgress<LoadProgress>(reports.Add));

        var last = reports[^1];
        Assert.Multiple(() =>
        {
            Assert.That(last.Stage, Is.EqualTo("Ready"));
            Assert.That(last.BytesDone, Is.EqualTo(model.WeightBytes));
            Assert.That(last.TensorsDone, Is.EqualTo(last.TensorsTotal));
            Assert.That(last.TensorsTotal, Is.EqualTo(63));
            Assert.That(reports.Select(r => r.BytesDone), Is.Ordered);
            Assert.That(reports.Count(r => r.Stage == "Checking tensors"), Is.GreaterThan(60));
        });
    }

    [Test]
    public void Tensors_refuse_access_after_the_model_is_disposed()
    {
        var model = ModelLoader.Load(Fixtures.Path(Fixtures.Mini8Bit));
        var norm = model.Weights.FinalNorm;
        model.Dispose();

        Assert.That(() => norm.Data.Span.Length, Throws.TypeOf<ObjectDisposedException>());
    }

    // Run on a machine with a big generated checkpoint (make-checkpoint --shape 13b or 34b) to check 64-bit offsets.
    [Test]
    [Explicit("needs CODELLAMA_LSP_LARGE_CHECKPOINT pointing at a checkpoint over 4 GB")]
    public void Checkpoint_over_4GB_maps_its_last_tensor_at_the_right_offset()
    {
        string? path = Environment.GetEnvironmentVariable("CODELLAMA_LSP_LARGE_CHECKPOINT");
        if (string.IsNullOrEmpty(path))
        {
            Assert.Ignore("CODELLAMA_LSP_LARGE_CHECKPOINT is not set");
        }

        using var model = ModelLoader.Load(path!);
        using var file = SafetensorsFile.Open(model.WeightFiles[^1]);
        var last = file.Entries.MaxBy(e => e.End)!;
        var mapped = file.GetTensor(last.Name).Data.Span;
        long headerLength;
        var expected = new byte[Math.Min(mapped.Length, 1 << 20)];
        using (var stream = File.OpenRead(file.Path))
        {
            var lengthBytes = new byte[8];
            stream.ReadExactly(lengthBytes);
            headerLength = BitConverter.ToInt64(lengthBytes);
            stream.Seek(8 + headerLength + last.End - expected.Length, SeekOrigin.Begin);
            stream.ReadExactly(expected);
        }

        bool tailMatches = mapped[^expected.Length..].SequenceEqual(expected);
        Assert.Multiple(() =>
        {
            Assert.That(model.WeightBytes, Is.GreaterThan(4L << 30));
            Assert.That(8 + headerLength + last.Begin, Is.GreaterThan(uint.MaxValue));
            Assert.That(tailMatches, Is.True);
        });
    }

    internal static byte[] ReadEntryBytes(string path, string name)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        using var doc = System.Text.Json.JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var offsets = doc.RootElement.GetProperty(name).GetProperty("data_offsets");
        int begin = 8 + (int)n + offsets[0].GetInt32(), end = 8 + (int)n + offsets[1].GetInt32();
        return bytes[begin..end];
    }
}

/// <summary>IProgress that calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
