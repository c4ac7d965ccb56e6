// The staged weight upload (StagedUpload + GptqHostMatrix / HostTensor writers) must place exactly the bytes the
// array-based load path placed (ArrayLayoutReference): GPTQ layers plain, act-order, 8-bit, v2, with bias, fused
// with and without a shared permutation, the fixtures' every layer as CudaModel groups them, and fp16 / fp32
// conversions from BF16 and F32. Tiny staging chunks force rows split across chunks and slots reused many times.
// Runs on ILGPU's CPU accelerator, where copies are synchronous, so it checks layout and chunking, not GPU timing.
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Tests.Loading;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
public class StagedUploadTests
{
    /// <summary>(chunk bytes, slots): default chunks, and chunks of a few rows with fewer slots than chunks.</summary>
    public static IEnumerable<TestCaseData> Stagings()
    {
        yield return new TestCaseData(StagedUpload.DefaultChunkBytes, 0).SetArgDisplayNames("32MiB", "default-slots");
        yield return new TestCaseData(48 * 1024, 3).SetArgDisplayNames("48KiB", "3-slots");
        yield return new TestCaseData(20_000, 1).SetArgDisplayNames("20000B", "1-slot");
    }

    [TestCaseSource(nameof(Stagings))]
    public void Random_gptq_layers_match_the_array_layout(int chunkBytes, int slots)
    {
        var rng = new Random(7);
        var shared = RandomWeights.Gptq(rng, 256, 128, 4, 32, actOrder: true);
        GptqLinearWeights[][] groups =
        [
            [RandomWeights.Gptq(rng, 256, 128, 4, 128, actOrder: false)],
            [RandomWeights.Gptq(rng, 256, 64, 4, 32, actOrder: true)],
            [RandomWeights.Gptq(rng, 128, 96, 8, -1, actOrder: true, bias: true)],
            [RandomWeights.Gptq(rng, 256, 136, 4, 64, actOrder: false, v2: true, bias: true)],

            // Fused without act-order, one part with a bias; fused sharing one act-order permutation (q/k/v of a
            // real act-order checkpoint may share it); and parts whose permutations differ, which stay separate.
            [RandomWeights.Gptq(rng, 256, 128, 4, 32, false), RandomWeights.Gptq(rng, 256, 64, 4, 32, false, bias: true), RandomWeights.Gptq(rng, 256, 64, 4, 32, false)],
            [shared, RandomWeights.Gptq(rng, 256, 64, 4, 32, true) with { GIdx = shared.GIdx }, RandomWeights.Gptq(rng, 256, 32, 4, 32, true) with { GIdx = shared.GIdx }],
            [RandomWeights.Gptq(rng, 256, 64, 8, 32, true), RandomWeights.Gptq(rng, 256, 64, 8, 32, true)],
        ];

        var fusedCount = CheckUpload(chunkBytes, slots, check =>
        {
            int fused = 0;
            foreach (var parts in groups)
            {
                fused += check.LinearGroup("random", parts) ? 1 : 0;
            }

            return fused;
        });

        Assert.That(fusedCount, Is.EqualTo(6), "every group but the one with different permutations is one matrix");
    }

    [TestCaseSource(nameof(FixtureCases))]
    public void Fixture_weights_match_the_array_layout(string fixture, int chunkBytes, int slots)
    {
        using var checkpoint = ModelLoader.Load(Fixtures.Path(fixture));
        var w = checkpoint.Weights;
        CheckUpload(chunkBytes, slots, check =>
        {
            // As CudaModel groups them: q/k/v and gate/up fused where their layouts allow.
            foreach (var l in w.Layers)
            {
                check.Floats(l.InputNorm);
                check.LinearGroup("qkv", [(GptqLinearWeights)l.QProj, (GptqLinearWeights)l.KProj, (GptqLinearWeights)l.VProj]);
                check.LinearGroup("o", [(GptqLinearWeights)l.OProj]);
                check.Floats(l.PostAttentionNorm);
                check.LinearGroup("gate_up", [(GptqLinearWeights)l.GateProj, (GptqLinearWeights)l.UpProj]);
                check.LinearGroup("down", [(GptqLinearWeights)l.DownProj]);
            }

            check.Halves(w.Embedding, (int)w.Embedding.Shape[1]);
            check.Floats(w.FinalNorm);
            check.Halves(w.LmHead, w.Config.HiddenSize);
            return 0;
        });
    }

    public static IEnumerable<TestCaseData> FixtureCases()
    {
        foreach (var f in new[] { Fixtures.Tiny, Fixtures.Mini4Bit, Fixtures.Mini8Bit })
        {
            yield return new TestCaseData(f, StagedUpload.DefaultChunkBytes, 0).SetArgDisplayNames(f, "32MiB");
            yield return new TestCaseData(f, 1 << 20, 2).SetArgDisplayNames(f, "1MiB-2-slots");
        }
    }

    [TestCaseSource(nameof(Stagings))]
    public void Bf16_and_f32_tensors_convert_as_the_whole_tensor_conversion_did(int chunkBytes, int slots)
    {
        var rng = new Random(3);
        var values = RandomWeights.Floats(rng, 96 * 64, 3.0);
        var f32 = TensorData.FromArray("f32", TensorDType.F32, [96, 64], values);
        var bf16 = TensorData.FromArray("bf16", TensorDType.BF16, [96, 64], values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray());
        var f16 = TensorData.FromArray("f16", TensorDType.F16, [96, 64], values.Select(v => (Half)v).ToArray());
        CheckUpload(chunkBytes, slots, check =>
        {
            foreach (var t in new[] { f32, bf16, f16 })
            {
                check.Halves(t, 64);
                check.Floats(t);
            }

            return 0;
        });
    }

    [Test]
    public void A_failing_writer_surfaces_from_Finish()
    {
        var device = TestDevices.Get("sim");
        var memory = new GpuMemory(device);
        using var upload = new StagedUpload(device, memory, slots: 2, chunkBytes: 4096);
        using var good = upload.Add(HostTensor.Zero<int>("fine"));
        using var bad = upload.Add(new HostTensor<int>("broken", 16, 1, (_, _) => throw new InvalidDataException("broken tensor")));

        var e = Assert.Throws<InvalidDataException>(() => upload.Finish());
        Assert.That(e!.Message, Is.EqualTo("broken tensor"));
    }

    /// <summary>Describes tensors through <paramref name="describe"/>, finishes the upload, then compares every buffer.</summary>
    private static T CheckUpload<T>(int chunkBytes, int slots, Func<UploadCheck, T> describe)
    {
        var device = TestDevices.Get("sim");
        var memory = new GpuMemory(device);
        using var upload = new StagedUpload(device, memory, slots, chunkBytes);
        var check = new UploadCheck(upload);
        var result = describe(check);
        var times = upload.Finish();
        check.CompareAll();
        TestContext.Out.WriteLine(times);
        return result;
    }

    /// <summary>Adds tensors to an upload, remembering what each device buffer must hold.</summary>
    private sealed class UploadCheck(StagedUpload upload)
    {
        private readonly List<Action> comparisons = [];

        /// <summary>Checks the layer group as one fused matrix when both paths can fuse it, else each part; true when fused.</summary>
        public bool LinearGroup(string what, GptqLinearWeights[] parts)
        {
            var expected = ArrayLayoutReference.Concatenate([.. parts.Select(ArrayLayoutReference.Gptq)]);
            var actual = GptqHostMatrix.TryConcatenate(what, [.. parts.Select(GptqHostMatrix.From)]);
            Assert.That(actual == null, Is.EqualTo(expected == null), $"{what}: both paths fuse, or neither");
            if (actual != null)
            {
                Matrix(actual, expected!);
                return true;
            }

            foreach (var p in parts)
            {
                Matrix(GptqHostMatrix.From(p), ArrayLayoutReference.Gptq(p));
            }

            return false;
        }

        public void Halves(TensorData t, int rowLength) => Expect(HostTensor.HalfBits(t.Name, t, rowLength), ArrayLayoutReference.HalfBits(t));

        public void Floats(TensorData t) => Expect(HostTensor.Float32(t.Name, t), ArrayLayoutReference.Float32(t));

        public void CompareAll()
        {
            foreach (var compare in comparisons)
            {
                compare();
            }
        }

        private void Matrix(GptqHostMatrix actual, GptqArrays expected)
        {
            Assert.Multiple(() =>
            {
                Assert.That(actual.OutFeatures, Is.EqualTo(expected.OutFeatures), actual.Name);
                Assert.That(actual.HasBias, Is.EqualTo(expected.Bias != null), actual.Name);
                Assert.That(actual.InversePermutation, Is.EqualTo(expected.InversePermutation), actual.Name);
            });

            // What CudaLinear.Upload puts on the device, the placeholders of the old path included.
            Expect(actual.QWeight, expected.QWeight);
            Expect(actual.QZeros, expected.QZeros);
            Expect(actual.Scales, expected.Scales);
            Expect(actual.Bias, expected.Bias ?? [0]);
            Expect(actual.Permutation, expected.InversePermutation ?? [0]);
        }

        private void Expect<TElement>(HostTensor<TElement> tensor, TElement[] expected)
            where TElement : unmanaged, IEquatable<TElement>
        {
            var buffer = upload.Add(tensor);
            comparisons.Add(() =>
            {
                var actual = buffer.GetAsArray1D();
                buffer.Dispose();
                Assert.That(actual, Has.Length.EqualTo(expected.Length), tensor.Name);
                int same = actual.AsSpan().CommonPrefixLength(expected);
                Assert.That(same, Is.EqualTo(expected.Length), $"{tensor.Name}: first difference at element {same}");
            });
        }
    }
}
