// llama.cpp's test-backend-ops idea: every op of the CUDA backend against the CPU backend (the oracle) on
// fresh random inputs, by relative L2 error. "sim" cases run on ILGPU's CPU accelerator (CI); "gpu" cases
// use the real widths of CodeLlama-34B (8192 / 22016 / 1024) and need a CUDA device.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Model;
using ILGPU.Runtime;

using CodeLlamaLsp.Inference.Tests.Engine;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
public class BackendOpsTests
{
    /// <summary>fp16 activations and fp16 pair sums, accumulated in fp32, against the fp32 CPU GEMV.</summary>
    private const double LinearTolerance = 4e-3;

    /// <summary>Ops computed in fp32 on both sides (norm, rope, add, silu, embedding of fp16 values).</summary>
    private const double Fp32Tolerance = 1e-5;

    /// <summary>Keys and values are stored in fp16 on the GPU, fp32 on the CPU.</summary>
    private const double AttentionTolerance = 3e-3;

    /// <summary>
    /// Both sides round the same fp32 norm to fp16, but a last-bit difference in the fp32 sum of squares now and then
    /// flips one element's rounding (5e-4 of that element).
    /// </summary>
    private const double HalfOutputTolerance = 1e-4;

    private const float NormEps = 1e-5f;

    private static readonly CpuBackend Cpu = new();

    public static IEnumerable<TestCaseData> LinearCases()
    {
        // kind, in, out, bits, group, actOrder, v2, bias, rows
        yield return Case("sim", 256, 128, 4, 128, false, false, false, 1);
        yield return Case("sim", 256, 64, 4, 32, true, false, false, 1);
        yield return Case("sim", 128, 96, 8, -1, true, false, false, 1);
        yield return Case("sim", 256, 128, 4, 64, false, true, true, 3);
        yield return Case("sim", 256, 64, 8, 128, true, false, false, 2);

        // GEMV edges: a partial column tile, K slices that do not divide the chunks (36 chunks over 32 slices),
        // 8-bit with out % 8 == 4, and wide layers that take the 64- and 128-column tiles (partial last tile).
        yield return Case("sim", 1152, 40, 4, 128, true, false, true, 1);
        yield return Case("sim", 640, 36, 8, 32, false, true, false, 2);
        yield return Case("sim", 256, 1032, 4, 64, false, false, true, 1);
        yield return Case("sim", 512, 4104, 8, 128, true, true, false, 1);

        // 4-bit layers with out % 32 == 0 and up to 16 rows take the small-batch tensor-core kernel: a partial last
        // column block (160, 352), both row tiles (9, 16 rows), act-order, v2 zeros, bias and one group over K.
        yield return Case("sim", 512, 160, 4, 32, true, true, true, 9);
        yield return Case("sim", 1024, 352, 4, 128, false, false, true, 3);
        yield return Case("sim", 256, 96, 4, 64, true, false, false, 16);
        yield return Case("sim", 384, 64, 4, 384, false, true, false, 2);

        // Rows >= CudaLinear.GemmMinRows take the tiled GEMM when the group size is a multiple of its 32-input stage
        // (g16 falls back to the GEMV): partial row and column tiles, a group per stage (g32), 8-bit, bias, v2 zeros.
        yield return Case("sim", 256, 128, 4, 32, false, false, false, 16);
        yield return Case("sim", 208, 72, 8, 16, true, true, true, 133);
        yield return Case("sim", 256, 96, 4, 128, true, false, true, 20);
        yield return Case("sim", 256, 136, 4, 64, true, false, false, 20);
        yield return Case("sim", 128, 72, 8, -1, true, false, false, 17);
        yield return Case("gpu", 8192, 8192, 4, 128, false, false, false, 1);
        yield return Case("gpu", 8192, 1024, 4, 128, false, false, false, 1);
        yield return Case("gpu", 8192, 22016, 4, 128, false, false, false, 1);
        yield return Case("gpu", 22016, 8192, 4, 128, false, false, false, 1);
        yield return Case("gpu", 8192, 44032, 4, 128, false, false, false, 1);
        yield return Case("gpu", 8192, 10240, 4, 128, false, false, false, 2);
        yield return Case("gpu", 8192, 8192, 4, 32, true, false, false, 1);
        yield return Case("gpu", 8192, 1024, 8, -1, true, false, false, 1);
        yield return Case("gpu", 8192, 8192, 8, 128, true, false, false, 4);
        yield return Case("gpu", 8192, 22016, 4, 128, true, false, false, 16);
        yield return Case("gpu", 8192, 10240, 4, 128, false, false, false, 300);
        yield return Case("gpu", 22016, 8192, 4, 128, false, false, false, 512);
        yield return Case("gpu", 8192, 1024, 8, -1, true, false, true, 129);
        yield return Case("gpu", 8192, 8192, 4, 32, true, true, false, 77);

        // The GEMM's partial tiles on the GPU: 1032 columns (8 of the last 128-column tile), 45 and 200 rows,
        // 8-bit with 516 columns (one 16-byte weight chunk in the last tile), and a K tail (8-bit, in 1040).
        yield return Case("gpu", 2048, 1032, 4, 128, true, false, true, 45);
        yield return Case("gpu", 1024, 516, 8, 32, false, true, false, 200);
        yield return Case("gpu", 1040, 256, 8, 32, false, false, false, 130);

        // The small-batch kernel on the GPU: both row tiles, a partial column block, g32 act-order with v2 zeros.
        yield return Case("gpu", 8192, 10240, 4, 128, false, false, false, 9);
        yield return Case("gpu", 22016, 8192, 4, 128, true, false, true, 4);
        yield return Case("gpu", 2048, 1056, 4, 128, true, false, true, 5);
        yield return Case("gpu", 4096, 352, 4, 32, true, true, false, 16);
    }

    private static TestCaseData Case(string kind, int inF, int outF, int bits, int group, bool actOrder, bool v2, bool bias, int rows)
    {
        var c = new TestCaseData(kind, inF, outF, bits, group, actOrder, v2, bias, rows)
            .SetArgDisplayNames(kind, $"{inF}x{outF}", $"{bits}bit", $"g{group}", actOrder ? "actorder" : "plain", v2 ? "v2" : "v1", bias ? "bias" : "nobias", $"rows{rows}");
        return kind == "gpu" ? c.SetCategory("Gpu") : c;
    }

    [TestCaseSource(nameof(LinearCases))]
    public void Gptq_linear_matches_the_cpu(string kind, int inF, int outF, int bits, int group, bool actOrder, bool v2, bool bias, int rows)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(inF + outF + bits + group);
        var w = RandomWeights.Gptq(rng, inF, outF, bits, group, actOrder, v2, bias);
        var x = RandomWeights.Floats(rng, rows * inF);
        var (actual, expected) = RunLinear(gpu, w, x, rows);
        double error = Numerics.RelativeL2(actual, expected);
        TestContext.Out.WriteLine($"relative L2 error {error:G3}");
        Assert.That(error, Is.LessThan(LinearTolerance));
    }

    /// <summary>
    /// Speculative verification runs a step's row inside a batch where plain decoding runs it alone: greedy output
    /// is identical only if each row's GEMV result is the same bits both ways (the column tile must not depend on
    /// the row count).
    /// </summary>
    [TestCase("sim", 256, 136, 4, 64, true, 7)]
    [TestCase("sim", 128, 72, 8, 32, false, 5)]
    [TestCase("sim", 512, 160, 4, 32, true, 11)]
    [TestCase("gpu", 8192, 10240, 4, 128, false, 9, Category = "Gpu")]
    [TestCase("gpu", 22016, 8192, 4, 128, true, 15, Category = "Gpu")]
    [TestCase("gpu", 8192, 8192, 8, 128, true, 6, Category = "Gpu")]
    public void Gemv_row_is_the_same_bits_alone_and_in_a_batch(string kind, int inF, int outF, int bits, int group, bool actOrder, int rows)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(inF + outF + rows);
        var w = RandomWeights.Gptq(rng, inF, outF, bits, group, actOrder, v2: false, bias: true);
        var x = RandomWeights.Floats(rng, rows * inF);
        var batch = RunLinear(gpu, w, x, rows).Actual;
        for (int r = 0; r < rows; r++)
        {
            var alone = RunLinear(gpu, w, x[(r * inF)..((r + 1) * inF)], 1).Actual;
            Assert.That(batch[(r * outF)..((r + 1) * outF)], Is.EqualTo(alone), $"row {r} of {rows}");
        }
    }

    [TestCase("sim", 64, 72, 2)]
    [TestCase("gpu", 8192, 32000, 1, Category = "Gpu")]
    public void Dense_linear_matches_the_cpu(string kind, int inF, int outF, int rows)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(inF * 3 + outF);
        var w = RandomWeights.Dense(rng, inF, outF);
        var x = RandomWeights.Floats(rng, rows * inF);
        var (actual, expected) = RunLinear(gpu, w, x, rows);
        Assert.That(Numerics.RelativeL2(actual, expected), Is.LessThan(LinearTolerance));
    }

    // Up to RmsNormKernels.SplitRowMaxRows rows of a width that is a multiple of 4 take the split-row kernel: one slice,
    // three slices (the last partial), and a full pass of eight 16-byte loads per thread plus a tail (9216). A width of
    // 130 or 17 rows take the one-block-per-row kernel.
    [TestCase("sim", 128, 3)]
    [TestCase("sim", 2600, 2)]
    [TestCase("sim", 9216, 1)]
    [TestCase("sim", 130, 2)]
    [TestCase("sim", 128, 17)]
    [TestCase("gpu", 8192, 5, Category = "Gpu")]
    [TestCase("gpu", 8192, 1, Category = "Gpu")]
    [TestCase("gpu", 8192, 40, Category = "Gpu")]
    public void RmsNorm_matches_the_cpu(string kind, int width, int rows)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(width + rows);
        var x = RandomWeights.Floats(rng, rows * width, 3);
        var weight = RandomWeights.Vector(rng, width);
        var r = Compare(gpu, rows * width, (b, o) =>
        {
            using var input = Up(b, x);
            using var wb = b.PrepareVector(weight);
            b.RmsNorm(input, wb, o, rows, width, NormEps);
        });
        Assert.That(r, Is.LessThan(Fp32Tolerance));
    }

    /// <summary>
    /// The fused decode path's RMSNorm, fp16 written into a GPTQ input layout (4-bit, act-order permutation), against a
    /// double-precision reference: few rows take the split-row kernel, 17 rows the one-block-per-row kernel.
    /// </summary>
    [TestCase("sim", 128, 3)]
    [TestCase("sim", 2560, 2)]
    [TestCase("sim", 256, 17)]
    [TestCase("gpu", 8192, 1, Category = "Gpu")]
    [TestCase("gpu", 8192, 15, Category = "Gpu")]
    [TestCase("gpu", 8192, 40, Category = "Gpu")]
    public void RmsNorm_into_a_gptq_input_layout_matches_a_reference(string kind, int width, int rows)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random((width * 7) + rows);
        var x = RandomWeights.Floats(rng, rows * width, 3);
        var weight = NormWeight(rng, width);
        var inversePermutation = Permutation(rng, width);
        var actual = NormToHalf(device, x, weight, width, 0, rows, inversePermutation).Select(h => (float)BitConverter.UInt16BitsToHalf(h)).ToArray();
        var expected = new float[rows * width];
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * width, width);
            double meanSquare = 0;
            foreach (float v in row)
            {
                meanSquare += (double)v * v;
            }

            double inv = 1 / Math.Sqrt((meanSquare / width) + NormEps);
            for (int k = 0; k < width; k++)
            {
                expected[(r * width) + ActivationLayout.HalfIndexHost(k, 4, inversePermutation)] = (float)(Half)(row[k] * inv * weight[k]);
            }
        }

        Assert.That(Numerics.RelativeL2(actual, expected), Is.LessThan(HalfOutputTolerance));
    }

    /// <summary>
    /// As <see cref="Gemv_row_is_the_same_bits_alone_and_in_a_batch"/>, for the norms in front of the q/k/v, gate/up and
    /// lm_head GEMVs: every row of a verification (up to 16 rows) must normalise to the bits a decode step computes for
    /// that row alone, in fp32 and in the fp16 layout. 9216 wide: a full pass of 16-byte loads plus a tail, three slices.
    /// </summary>
    [TestCase("sim", 128, 16)]
    [TestCase("sim", 9216, 3)]
    [TestCase("gpu", 8192, 16, Category = "Gpu")]
    [TestCase("gpu", 8192, 7, Category = "Gpu")]
    public void RmsNorm_row_is_the_same_bits_alone_and_in_a_batch(string kind, int width, int rows)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(width + (rows * 3));
        var x = RandomWeights.Floats(rng, rows * width, 3);
        var weight = NormWeight(rng, width);
        var inversePermutation = Permutation(rng, width);
        var batchFloat = NormToFloat(device, x, weight, width, 0, rows);
        var batchHalf = NormToHalf(device, x, weight, width, 0, rows, inversePermutation);
        for (int r = 0; r < rows; r++)
        {
            var aloneFloat = NormToFloat(device, x, weight, width, r, 1);
            var aloneHalf = NormToHalf(device, x, weight, width, r, 1, inversePermutation);
            Assert.That(Bits(batchFloat[(r * width)..((r + 1) * width)]), Is.EqualTo(Bits(aloneFloat)), $"fp32, row {r} of {rows}");
            Assert.That(batchHalf[(r * width)..((r + 1) * width)], Is.EqualTo(aloneHalf), $"fp16 layout, row {r} of {rows}");
        }
    }

    [TestCase("sim", 4, 32, 2, 0)]
    [TestCase("sim", 2, 128, 3, 700)]
    [TestCase("gpu", 64, 128, 4, 16000, Category = "Gpu")]
    public void Rope_matches_the_cpu(string kind, int heads, int headDim, int rows, int start)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(heads + headDim + start);
        var x = RandomWeights.Floats(rng, rows * heads * headDim);
        var r = Compare(gpu, x.Length, (b, o) =>
        {
            b.Upload(x, o, 0);
            b.Rope(o, rows, heads, headDim, start, 1_000_000f);
        });
        Assert.That(r, Is.LessThan(Fp32Tolerance));
    }

    [TestCase("sim", 8, 2, 32, 1, 300, 2)]
    [TestCase("sim", 8, 1, 128, 5, 20, 1)]
    [TestCase("sim", 4, 4, 64, 1, 0, 1)]
    [TestCase("gpu", 64, 8, 128, 1, 8191, 48, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 300, 100, 2, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 1, 2047, 3, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 1, 100, 2, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 1, 300, 2, Category = "Gpu")]

    // From PrefillAttentionKernels.MinRows rows the tensor-core kernel: one whole 64-row tile from position 0, a
    // partial tile far into the context, and one KV head for eight query heads (the mini fixtures' shape).
    [TestCase("gpu", 64, 8, 128, 64, 0, 1, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 17, 4000, 1, Category = "Gpu")]
    [TestCase("gpu", 8, 1, 128, 200, 37, 1, Category = "Gpu")]
    public void Attention_matches_the_cpu(string kind, int heads, int kvHeads, int headDim, int rows, int start, int layers)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(heads + kvHeads + rows + start);
        int capacity = start + rows + 7;
        int layer = layers - 1;
        int kvWidth = kvHeads * headDim;

        // Fill positions 0..start+rows-1 with keys and values, then attend from the last `rows` positions.
        var keys = RandomWeights.Floats(rng, (start + rows) * kvWidth, 2);
        var values = RandomWeights.Floats(rng, (start + rows) * kvWidth);
        var q = RandomWeights.Floats(rng, rows * heads * headDim, 2);
        var r = Compare(gpu, rows * heads * headDim, (b, o) =>
        {
            using var cache = b.AllocateKvCache(layers, kvHeads, headDim, capacity);
            using var kb = Up(b, keys);
            using var vb = Up(b, values);
            b.StoreKv(cache, layer, kb, vb, 0, start + rows);
            using var qb = Up(b, q);
            b.Attention(qb, cache, layer, o, heads, start, rows);
        });
        Assert.That(r, Is.LessThan(AttentionTolerance));
    }

    /// <summary>
    /// Decode attention with its keys split over blocks as a decode step and a verification launch it (on the CPU
    /// accelerator's one multiprocessor the public op never splits): rows on both sides of the 128-key tile boundary, where
    /// a row's output moves from the attention kernel (one split with keys) to the combine, against the CPU, and every row
    /// of the batch the same bits as that row alone, in fp32 and fp16.
    /// </summary>
    [TestCase("sim", 8, 2, 32, 120, 15, 4, false)]
    [TestCase("sim", 8, 2, 64, 250, 10, 3, true)]
    [TestCase("gpu", 64, 8, 128, 120, 15, 8, true, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 2040, 15, 8, false, Category = "Gpu")]
    public void Split_attention_matches_the_cpu_and_a_row_is_the_same_bits_alone_and_in_a_batch(string kind, int heads, int kvHeads, int headDim, int start, int rows, int splits, bool halfOutput)
    {
        var device = TestDevices.Get(kind);
        using var gpu = new CudaBackend(device, ownsDevice: false);
        var rng = new Random(heads + headDim + start + rows);
        int capacity = start + rows + 7;
        int width = heads * headDim;
        var keys = RandomWeights.Floats(rng, (start + rows) * kvHeads * headDim, 2);
        var values = RandomWeights.Floats(rng, (start + rows) * kvHeads * headDim);
        var q = RandomWeights.Floats(rng, rows * width, 2);

        float[] expected;
        using (var o = Cpu.Allocate(rows * width))
        {
            using var cache = Cpu.AllocateKvCache(1, kvHeads, headDim, capacity);
            using var kb = Up(Cpu, keys);
            using var vb = Up(Cpu, values);
            Cpu.StoreKv(cache, 0, kb, vb, 0, start + rows);
            using var qb = Up(Cpu, q);
            Cpu.Attention(qb, cache, 0, o, heads, start, rows);
            expected = new float[rows * width];
            Cpu.Download(o, 0, expected);
        }

        using var gpuCache = gpu.AllocateKvCache(1, kvHeads, headDim, capacity);
        using (var kb = Up(gpu, keys))
        using (var vb = Up(gpu, values))
        {
            gpu.StoreKv(gpuCache, 0, kb, vb, 0, start + rows);
        }

        var a = device.Accelerator;
        using var qv = a.Allocate1D(q);
        using var naturalOrder = a.Allocate1D(new int[1]);
        var layout = new InputLayoutArgs { Bits = 16, InversePermutation = naturalOrder.View.AsContiguous() };

        // Rows [first, first + count) at their positions; the output as fp32, or fp16 bits widened to int.
        int[] Run(int first, int count)
        {
            using var output = a.Allocate1D(Enumerable.Repeat(float.NaN, count * width).ToArray());
            using var outputHalf = a.Allocate1D(Enumerable.Repeat((ushort)0x7E00, count * width).ToArray());
            gpu.SetStart(start + first);
            gpu.RunAttention(qv.View.AsContiguous().SubView((long)first * width, (long)count * width), width, (CudaKvCache)gpuCache, 0, heads, count, splits, output.View.AsContiguous(), outputHalf.View.AsContiguous(), halfOutput, layout);
            device.Synchronize();
            return halfOutput ? [.. outputHalf.GetAsArray1D().Select(h => (int)h)] : Bits(output.GetAsArray1D());
        }

        var batch = Run(0, rows);
        var actual = batch.Select(v => halfOutput ? (float)BitConverter.UInt16BitsToHalf((ushort)v) : BitConverter.Int32BitsToSingle(v)).ToArray();
        Assert.That(Numerics.RelativeL2(actual, expected), Is.LessThan(AttentionTolerance));
        for (int r = 0; r < rows; r++)
        {
            Assert.That(batch[(r * width)..((r + 1) * width)], Is.EqualTo(Run(r, 1)), $"row {r} of {rows} (position {start + r})");
        }
    }

    [TestCase("sim", 300)]
    [TestCase("gpu", 22016 * 4, Category = "Gpu")]
    public void SiluMultiply_and_Add_match_the_cpu(string kind, int n)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(n);
        var g = RandomWeights.Floats(rng, n, 6);
        var u = RandomWeights.Floats(rng, n, 2);
        var silu = Compare(gpu, n, (b, o) =>
        {
            using var ub = Up(b, u);
            b.Upload(g, o, 0);
            b.SiluMultiply(o, ub, n);
        });
        var add = Compare(gpu, n, (b, o) =>
        {
            using var ub = Up(b, u);
            b.Upload(g, o, 0);
            b.Add(o, ub, n);
        });
        Assert.Multiple(() =>
        {
            Assert.That(silu, Is.LessThan(Fp32Tolerance), "silu * up");
            Assert.That(add, Is.LessThan(Fp32Tolerance), "add");
        });
    }

    [TestCase("sim", 50, 64)]
    [TestCase("gpu", 32000, 8192, Category = "Gpu")]
    public void Embed_matches_the_cpu(string kind, int vocab, int hidden)
    {
        using var gpu = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
        var rng = new Random(vocab);
        var table = TensorData.FromArray("embed", TensorDType.F16, [vocab, hidden], RandomWeights.Floats(rng, vocab * hidden).Select(v => (Half)v).ToArray());
        int[] ids = [1, vocab - 1, 7, 1];
        var r = Compare(gpu, ids.Length * hidden, (b, o) =>
        {
            using var t = b.PrepareEmbedding(table);
            b.Embed(t, ids, o);
        });
        Assert.That(r, Is.LessThan(Fp32Tolerance));
    }

    [Test]
    public void Embed_rejects_an_id_outside_the_vocabulary()
    {
        using var gpu = new CudaBackend(TestDevices.Get("sim"), ownsDevice: false);
        var table = TensorData.FromArray("embed", TensorDType.F16, [4, 8], new Half[32]);
        using var t = gpu.PrepareEmbedding(table);
        using var o = gpu.Allocate(8);
        Assert.That(() => gpu.Embed(t, [4], o), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("outside the vocabulary"));
    }

    private static (float[] Actual, float[] Expected) RunLinear(CudaBackend gpu, LinearWeights w, float[] x, int rows)
    {
        float[] Run(IComputeBackend b)
        {
            using var lin = b.PrepareLinear(w);
            using var input = Up(b, x);
            using var output = b.Allocate(rows * w.OutFeatures);

            // Poison the output so an unwritten element shows up as a large error.
            b.Upload(Enumerable.Repeat(1e6f, rows * w.OutFeatures).ToArray(), output, 0);
            b.Linear(lin, input, output, rows);
            var r = new float[rows * w.OutFeatures];
            b.Download(output, 0, r);
            return r;
        }

        return (Run(gpu), Run(Cpu));
    }

    /// <summary>Runs <paramref name="op"/> on both backends into a poisoned output of n floats; returns the relative L2 error.</summary>
    private static double Compare(CudaBackend gpu, int n, Action<IComputeBackend, DeviceBuffer> op)
    {
        float[] Run(IComputeBackend b)
        {
            using var o = b.Allocate(n);
            b.Upload(Enumerable.Repeat(1e6f, n).ToArray(), o, 0);
            op(b, o);
            var r = new float[n];
            b.Download(o, 0, r);
            return r;
        }

        return Numerics.RelativeL2(Run(gpu), Run(Cpu));
    }

    /// <summary>RMSNorm through the kernels the decode path launches, on rows [firstRow, firstRow + rows) of x, into fp32 (NaN-poisoned output).</summary>
    private static float[] NormToFloat(CudaDevice device, float[] x, float[] weight, int width, int firstRow, int rows)
    {
        var a = device.Accelerator;
        using var input = a.Allocate1D(x);
        using var w = a.Allocate1D(weight);
        using var output = a.Allocate1D(Enumerable.Repeat(float.NaN, rows * width).ToArray());
        device.Kernels.RmsNorm(input.View.AsContiguous().SubView((long)firstRow * width, (long)rows * width), w.View.AsContiguous(), output.View.AsContiguous(), rows, width, NormEps);
        device.Synchronize();
        return output.GetAsArray1D();
    }

    /// <summary>As <see cref="NormToFloat"/>, into the fp16 input layout of a 4-bit GPTQ layer with act-order permutation (fp16 NaN-poisoned output).</summary>
    private static ushort[] NormToHalf(CudaDevice device, float[] x, float[] weight, int width, int firstRow, int rows, int[] inversePermutation)
    {
        var a = device.Accelerator;
        using var input = a.Allocate1D(x);
        using var w = a.Allocate1D(weight);
        using var permutation = a.Allocate1D(inversePermutation);
        using var output = a.Allocate1D(Enumerable.Repeat((ushort)0x7E00, rows * width).ToArray());
        var layout = new InputLayoutArgs { Bits = 4, HasPermutation = 1, InversePermutation = permutation.View.AsContiguous() };
        device.Kernels.RmsNormToHalf(input.View.AsContiguous().SubView((long)firstRow * width, (long)rows * width), w.View.AsContiguous(), output.View.AsContiguous(), rows, width, NormEps, layout);
        device.Synchronize();
        return output.GetAsArray1D();
    }

    private static int[] Bits(float[] values) => [.. values.Select(BitConverter.SingleToInt32Bits)];

    private static float[] NormWeight(Random rng, int width) => [.. RandomWeights.Floats(rng, width, 0.5).Select(v => 1f + v)];

    private static int[] Permutation(Random rng, int n) => [.. Enumerable.Range(0, n).OrderBy(_ => rng.Next())];

    private static DeviceBuffer Up(IComputeBackend b, float[] values)
    {
        var buf = b.Allocate(values.Length);
        b.Upload(values, buf, 0);
        return buf;
    }
}
