// llama.cpp's test-backend-ops idea: every kernel the CUDA engine launches, through the engine's own pieces (weights
// uploaded by StagedUpload as CudaModel uploads them, the KV cache from CudaBackend, the RoPE table, CudaAttention,
// the fp16 input layouts its producers write), against the CPU backend's op computing the same math (the oracle), on
// fresh random inputs, by relative L2 error. "sim" cases run on ILGPU's CPU accelerator (CI); "gpu" cases use the real
// widths of CodeLlama-34B (8192 / 22016 / 1024) and need a CUDA device.
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Model;

using CodeLlamaLsp.Inference.Tests.Engine;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
public class BackendOpsTests
{
    /// <summary>fp16 activations and fp16 pair sums, accumulated in fp32, against the fp32 CPU GEMV.</summary>
    private const double LinearTolerance = 4e-3;

    /// <summary>Ops computed in fp32 on both sides (norm, rope, embedding of fp16 values).</summary>
    private const double Fp32Tolerance = 1e-5;

    /// <summary>fp32 math written as fp16 (the producers of a GEMV's input, the KV cache): 11 bits, at most 4.9e-4 per element.</summary>
    private const double HalfTolerance = 1e-3;

    /// <summary>
    /// fp16 against a reference that rounds the same norm to fp16 itself: a last-bit difference in the fp32 sum of squares
    /// now and then flips one element's rounding (5e-4 of that element).
    /// </summary>
    private const double HalfRoundingTolerance = 1e-4;

    private const float NormEps = 1e-5f;

    private const float RopeTheta = 1_000_000f;

    /// <summary>Keys and values are stored in fp16 on the GPU, fp32 on the CPU.</summary>
    private const double AttentionTolerance = 3e-3;

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

        // 17+ rows on the GPU run cuBLAS on the layer dequantized to fp16 where it is installed ("gpu"; layers with a
        // bias keep the built-in GEMM) and the built-in GEMM ("gpu-builtin", as on a machine with the driver alone).
        // The GEMM's partial tiles: 1032 columns (8 of the last 128-column tile), 45 and 200 rows, 8-bit with 516
        // columns (one 16-byte weight chunk in the last tile), and a K tail (8-bit, in 1040).
        foreach (var kind in new[] { "gpu", "gpu-builtin" })
        {
            yield return Case(kind, 8192, 10240, 4, 128, false, false, false, 300);
            yield return Case(kind, 22016, 8192, 4, 128, false, false, false, 512);
            yield return Case(kind, 8192, 1024, 8, -1, true, false, true, 129);
            yield return Case(kind, 8192, 8192, 4, 32, true, true, false, 77);
            yield return Case(kind, 2048, 1032, 4, 128, true, false, true, 45);
            yield return Case(kind, 2048, 1032, 4, 128, true, false, false, 45);
            yield return Case(kind, 1024, 516, 8, 32, false, true, false, 200);
            yield return Case(kind, 1040, 256, 8, 32, false, false, false, 130);
        }

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
        return kind.StartsWith("gpu", StringComparison.Ordinal) ? c.SetCategory("Gpu") : c;
    }

    [TestCaseSource(nameof(LinearCases))]
    public void Gptq_linear_matches_the_cpu(string kind, int inF, int outF, int bits, int group, bool actOrder, bool v2, bool bias, int rows)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(inF + outF + bits + group);
        var w = RandomWeights.Gptq(rng, inF, outF, bits, group, actOrder, v2, bias);
        var x = RandomWeights.Floats(rng, rows * inF);
        double error = Numerics.RelativeL2(gpu.Linear(w, x, rows), CpuLinear(w, x, rows));
        TestContext.Out.WriteLine($"relative L2 error {error:G3}");
        Assert.That(error, Is.LessThan(LinearTolerance));
    }

    /// <summary>
    /// Act-order q/k/v (or gate/up) with different permutations run as one small-batch launch (RunShared's path): each
    /// part reads its own input layout and writes its own columns of the shared output, which match the CPU's linear
    /// layer and, closely (the stream-K split differs), the part launched alone. Parts of 256 / 64 / 64 columns, of 160 /
    /// 96 (not whole column blocks; bias, v2 zeros) and of 96 / 32 / 160 (g32), at both row tiles.
    /// </summary>
    [TestCase("sim", 256, new[] { 256, 64, 64 }, 128, false, false, 1)]
    [TestCase("sim", 256, new[] { 256, 64, 64 }, 128, false, false, 5)]
    [TestCase("sim", 256, new[] { 256, 64, 64 }, 128, false, false, 16)]
    [TestCase("sim", 256, new[] { 160, 96 }, 64, true, true, 5)]
    [TestCase("sim", 256, new[] { 96, 32, 160 }, 32, false, false, 16)]
    [TestCase("gpu", 8192, new[] { 8192, 1024, 1024 }, 128, false, false, 1, Category = "Gpu")]
    [TestCase("gpu", 8192, new[] { 8192, 1024, 1024 }, 128, false, false, 5, Category = "Gpu")]
    [TestCase("gpu", 8192, new[] { 8192, 1024, 1024 }, 128, false, false, 16, Category = "Gpu")]
    [TestCase("gpu", 8192, new[] { 22016, 22016 }, 128, false, false, 1, Category = "Gpu")]
    [TestCase("gpu", 8192, new[] { 22016, 22016 }, 128, false, false, 16, Category = "Gpu")]
    [TestCase("gpu", 2048, new[] { 1056, 96, 160 }, 32, true, true, 9, Category = "Gpu")]
    public void Act_order_parts_in_one_small_batch_launch_match_the_cpu(string kind, int inF, int[] outs, int group, bool v2, bool bias, int rows)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(inF + outs.Sum() + rows);
        var parts = outs.Select(o => RandomWeights.Gptq(rng, inF, o, 4, group, actOrder: true, v2, bias)).ToArray();
        var x = RandomWeights.Floats(rng, rows * inF);
        var shared = gpu.LinearParts(parts, x, rows);
        int width = outs.Sum();
        int offset = 0;
        foreach (var w in parts)
        {
            var mine = Columns(shared, rows, width, offset, w.OutFeatures);
            double error = Numerics.RelativeL2(mine, CpuLinear(w, x, rows));
            double alone = Numerics.RelativeL2(mine, gpu.Linear(w, x, rows));
            TestContext.Out.WriteLine($"part of {w.OutFeatures} at {offset}: relative L2 error {error:G3} against the cpu, {alone:G3} against the part alone");
            Assert.That(error, Is.LessThan(LinearTolerance));
            Assert.That(alone, Is.LessThan(1e-5), "against the part launched alone");
            offset += w.OutFeatures;
        }
    }

    /// <summary>
    /// cuBLAS's operands for a prompt's products: the dequantized layer times the fp16 input as stored (the layout's pair
    /// order and act-order permutation) gives the CPU's linear layer, so the rows line up and each weight is right.
    /// </summary>
    [TestCase("sim", 256, 96, 4, 64, true, false)]
    [TestCase("sim", 128, 72, 8, 32, false, true)]
    [TestCase("sim", 192, 40, 4, -1, false, false)]
    [TestCase("gpu", 8192, 1032, 4, 128, true, false, Category = "Gpu")]
    public void Dequantized_layer_times_its_stored_input_matches_the_cpu(string kind, int inF, int outF, int bits, int group, bool actOrder, bool v2)
    {
        const int rows = 3;
        using var gpu = new Gpu(kind);
        var rng = new Random((3 * inF) + outF + bits);
        var w = RandomWeights.Gptq(rng, inF, outF, bits, group, actOrder, v2, bias: false);
        var x = RandomWeights.Floats(rng, rows * inF);
        var (weights, input) = gpu.Dequantized(w, x, rows);
        var product = new float[rows * outF];
        for (int r = 0; r < rows; r++)
        {
            for (int n = 0; n < outF; n++)
            {
                double sum = 0;
                for (int k = 0; k < inF; k++)
                {
                    sum += (double)input[(r * inF) + k] * weights[((long)k * outF) + n];
                }

                product[(r * outF) + n] = (float)sum;
            }
        }

        double error = Numerics.RelativeL2(product, CpuLinear(w, x, rows));
        TestContext.Out.WriteLine($"relative L2 error {error:G3}");
        Assert.That(error, Is.LessThan(LinearTolerance));
    }

    /// <summary>On a machine whose CUDA toolkit has cuBLAS (the GPU test machine), the engine finds and starts it.</summary>
    [Test]
    [Category("Gpu")]
    public void Cublas_starts_where_the_toolkit_has_it()
    {
        var device = TestDevices.Get("gpu");
        if (!new[] { "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.12" }.Any(File.Exists))
        {
            Assert.Ignore("This machine has no cuBLAS under /usr/local/cuda.");
        }

        Assert.That(device.HasCublas, Is.True, device.PrefillGemm);
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
        using var gpu = new Gpu(kind);
        var rng = new Random(inF + outF + rows);
        var w = RandomWeights.Gptq(rng, inF, outF, bits, group, actOrder, v2: false, bias: true);
        var x = RandomWeights.Floats(rng, rows * inF);
        var batch = gpu.Linear(w, x, rows);
        for (int r = 0; r < rows; r++)
        {
            var alone = gpu.Linear(w, x[(r * inF)..((r + 1) * inF)], 1);
            Assert.That(batch[(r * outF)..((r + 1) * outF)], Is.EqualTo(alone), $"row {r} of {rows}");
        }
    }

    /// <summary>
    /// The dense GEMV reads a lane's chunks four at a time while four more 32-lane strides fit, then one at a time: 1,088
    /// inputs (136 chunks) take both on some lanes; 6 rows take a full and a partial group of DenseGemvKernels.InputRowsPerBlock.
    /// </summary>
    [TestCase("sim", 64, 72, 2)]
    [TestCase("sim", 1088, 40, 6)]
    [TestCase("gpu", 8192, 32000, 1, Category = "Gpu")]
    [TestCase("gpu", 8192, 32000, 16, Category = "Gpu")]
    public void Dense_linear_matches_the_cpu(string kind, int inF, int outF, int rows)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(inF * 3 + outF);
        var w = RandomWeights.Dense(rng, inF, outF);
        var x = RandomWeights.Floats(rng, rows * inF);
        Assert.That(Numerics.RelativeL2(gpu.Linear(w, x, rows), CpuLinear(w, x, rows)), Is.LessThan(LinearTolerance));
    }

    /// <summary>lm_head logits of a verification row are the same bits as that row decoded alone.</summary>
    [TestCase("sim", 1088, 40, 6)]
    [TestCase("gpu", 8192, 32000, 7, Category = "Gpu")]
    public void Dense_linear_row_is_the_same_bits_alone_and_in_a_batch(string kind, int inF, int outF, int rows)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(inF + outF + rows);
        var w = RandomWeights.Dense(rng, inF, outF);
        var x = RandomWeights.Floats(rng, rows * inF);
        var batch = gpu.Linear(w, x, rows);
        for (int r = 0; r < rows; r++)
        {
            var alone = gpu.Linear(w, x[(r * inF)..((r + 1) * inF)], 1);
            Assert.That(batch[(r * outF)..((r + 1) * outF)], Is.EqualTo(alone), $"row {r} of {rows}");
        }
    }

    /// <summary>o_proj and down_proj add their output to the residual stream in the GEMV itself (the CPU adds after the linear).</summary>
    [TestCase("sim", 256, 128, 4, 64, 3)]
    [TestCase("gpu", 22016, 8192, 4, 128, 1, Category = "Gpu")]
    public void A_linear_accumulating_into_the_residual_matches_the_cpu_linear_and_add(string kind, int inF, int outF, int bits, int group, int rows)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(inF + outF + 1);
        var w = RandomWeights.Gptq(rng, inF, outF, bits, group, actOrder: true, bias: true);
        var x = RandomWeights.Floats(rng, rows * inF);
        var residual = RandomWeights.Floats(rng, rows * outF, 4);
        var expected = CpuLinear(w, x, rows).Zip(residual, (a, b) => a + b).ToArray();
        Assert.That(Numerics.RelativeL2(gpu.Linear(w, x, rows, residual), expected), Is.LessThan(LinearTolerance));
    }

    /// <summary>
    /// RMSNorm as the engine runs it: into fp32 (act-order layers that need their own input layouts) and into fp16. Up to
    /// RmsNormKernels.SplitRowMaxRows rows of a width that is a multiple of 4 take the split-row kernel: one slice, three
    /// slices (the last partial), and a full pass of eight 16-byte loads per thread plus a tail (9216). A width of 130 or
    /// 17 rows take the one-block-per-row kernel.
    /// </summary>
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
        using var gpu = new Gpu(kind);
        var rng = new Random(width + rows);
        var x = RandomWeights.Floats(rng, rows * width, 3);
        var weight = RandomWeights.Vector(rng, width);
        var expected = CpuRun(rows * width, (b, o) =>
        {
            using var input = Up(b, x);
            using var wb = b.PrepareVector(weight);
            b.RmsNorm(input, wb, o, rows, width, NormEps);
        });

        using var norm = gpu.Staged(upload => CudaBuffer.Upload(upload, weight));
        var toHalf = gpu.RmsNorm(x, norm, width, 0, rows, gpu.NaturalLayout);
        Assert.That(Numerics.RelativeL2(Halves(toHalf), expected), Is.LessThan(HalfTolerance));
    }

    /// <summary>
    /// The fused decode path's RMSNorm, fp16 written into a GPTQ input layout (4-bit, with and without act-order permutation),
    /// against a double-precision reference: few rows take the split-row kernel, 17 rows the one-block-per-row kernel.
    /// </summary>
    [TestCase("sim", 128, 3, true)]
    [TestCase("sim", 2560, 2, true)]
    [TestCase("sim", 2560, 2, false)]
    [TestCase("sim", 256, 17, true)]
    [TestCase("gpu", 8192, 1, true, Category = "Gpu")]
    [TestCase("gpu", 8192, 1, false, Category = "Gpu")]
    [TestCase("gpu", 8192, 15, true, Category = "Gpu")]
    [TestCase("gpu", 8192, 40, true, Category = "Gpu")]
    public void RmsNorm_into_a_gptq_input_layout_matches_a_reference(string kind, int width, int rows, bool actOrder)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random((width * 7) + rows);
        var x = RandomWeights.Floats(rng, rows * width, 3);
        var weight = RandomWeights.Vector(rng, width);
        var inversePermutation = actOrder ? RandomWeights.Permutation(rng, width) : null;
        var w = weight.ToFloat32();
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
                expected[(r * width) + ActivationLayout.HalfIndexHost(k, 4, inversePermutation)] = (float)(System.Half)(row[k] * inv * w[k]);
            }
        }

        using var norm = gpu.Staged(upload => CudaBuffer.Upload(upload, weight));
        using var permutation = gpu.Up(inversePermutation ?? [0]);
        var layout = GptqLayout(permutation) with { HasPermutation = actOrder ? 1 : 0 };
        var toHalf = gpu.RmsNorm(x, norm, width, 0, rows, layout);
        Assert.That(Numerics.RelativeL2(Halves(toHalf), expected), Is.LessThan(HalfRoundingTolerance));
    }

    /// <summary>
    /// As <see cref="Gemv_row_is_the_same_bits_alone_and_in_a_batch"/>, for the norms in front of the q/k/v, gate/up and
    /// lm_head GEMVs: every row of a verification (up to 16 rows) must normalise to the bits a decode step computes for
    /// that row alone, in the fp16 layout: 4-bit with and without act-order, and natural order. 9216 wide: a full pass of
    /// 16-byte loads plus a tail, three slices; 2600: a partial last slice.
    /// </summary>
    [TestCase("sim", 128, 16, true)]
    [TestCase("sim", 9216, 3, true)]
    [TestCase("sim", 2600, 5, false)]
    [TestCase("sim", 1024, 15, false)]
    [TestCase("gpu", 8192, 16, true, Category = "Gpu")]
    [TestCase("gpu", 8192, 7, true, Category = "Gpu")]
    [TestCase("gpu", 8192, 15, false, Category = "Gpu")]
    public void RmsNorm_row_is_the_same_bits_alone_and_in_a_batch(string kind, int width, int rows, bool actOrder)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(width + (rows * 3));
        var x = RandomWeights.Floats(rng, rows * width, 3);
        using var norm = gpu.Staged(upload => CudaBuffer.Upload(upload, RandomWeights.Vector(rng, width)));
        using var permutation = gpu.Up(RandomWeights.Permutation(rng, width));
        var gptq = GptqLayout(permutation);
        var layouts = new[] { actOrder ? gptq : gptq with { HasPermutation = 0 }, gpu.NaturalLayout };
        foreach (var layout in layouts)
        {
            var batch = gpu.RmsNorm(x, norm, width, 0, rows, layout);
            for (int r = 0; r < rows; r++)
            {
                var alone = gpu.RmsNorm(x, norm, width, r, 1, layout);
                Assert.That(batch[(r * width)..((r + 1) * width)], Is.EqualTo(alone), $"{layout.Bits}-bit layout, row {r} of {rows}");
            }
        }
    }

    /// <summary>
    /// Act-order q/k/v (or gate/up) share one norm but each has its own permutation: one launch writes every layout, and
    /// each output is the bits a launch for that layout alone writes (a natural-order layout and a GPTQ layout without
    /// permutation among them). One, two and three layouts: the kernel branches on the count. Few rows take the
    /// split-row kernel, 40 rows the one-block-per-row kernel.
    /// </summary>
    [TestCase("sim", 256, 3, 3)]
    [TestCase("sim", 2600, 2, 2)]
    [TestCase("sim", 1024, 4, 1)]
    [TestCase("sim", 256, 40, 3)]
    [TestCase("gpu", 8192, 1, 3, Category = "Gpu")]
    [TestCase("gpu", 8192, 1, 2, Category = "Gpu")]
    [TestCase("gpu", 8192, 40, 3, Category = "Gpu")]
    public void RmsNorm_into_several_layouts_writes_what_one_norm_per_layout_writes(string kind, int width, int rows, int count)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(width + rows);
        var x = RandomWeights.Floats(rng, rows * width, 3);
        using var norm = gpu.Staged(upload => CudaBuffer.Upload(upload, RandomWeights.Vector(rng, width)));
        using var first = gpu.Up(RandomWeights.Permutation(rng, width));
        using var second = gpu.Up(RandomWeights.Permutation(rng, width));
        var all = new[] { GptqLayout(first), gpu.NaturalLayout, GptqLayout(second), GptqLayout(first) with { HasPermutation = 0 } };
        var layouts = count switch
        {
            1 => new[] { all[3] },
            2 => new[] { all[0], all[3] },
            _ => all[..3],
        };
        using var input = gpu.Up(x);
        var buffers = layouts.Select(_ => gpu.Up(HalfPoison(rows * width))).ToArray();
        try
        {
            var outputs = NormOutputs.Of(buffers.Select(b => (ArrayView<ushort>)b.View).ToArray(), layouts);
            gpu.K.RmsNormToHalf(input.View, norm.Buffer.View, outputs, rows, width, NormEps);
            for (int i = 0; i < layouts.Length; i++)
            {
                var alone = gpu.RmsNorm(x, norm, width, 0, rows, layouts[i]);
                Assert.That(gpu.Down(buffers[i], rows * width), Is.EqualTo(alone), $"layout {i} of {count}");
            }
        }
        finally
        {
            foreach (var b in buffers)
            {
                b.Dispose();
            }
        }
    }

    /// <summary>
    /// The fused RoPE and KV store on qkv rows (q, k, v columns) at positions start..: q rotated in place, k rotated and v
    /// copied into the fp16 cache, against the CPU's Rope of q and k.
    /// </summary>
    [TestCase("sim", 4, 2, 32, 2, 0)]
    [TestCase("sim", 2, 1, 128, 3, 700)]
    [TestCase("gpu", 64, 8, 128, 4, 16000, Category = "Gpu")]
    public void Rotate_and_store_matches_the_cpu_rope(string kind, int heads, int kvHeads, int headDim, int rows, int start)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(heads + headDim + start);
        int qWidth = heads * headDim;
        int kvWidth = kvHeads * headDim;
        int stride = qWidth + (2 * kvWidth);
        var qkv = RandomWeights.Floats(rng, rows * stride);
        var q = Columns(qkv, rows, stride, 0, qWidth);
        var k = Columns(qkv, rows, stride, qWidth, kvWidth);
        var v = Columns(qkv, rows, stride, qWidth + kvWidth, kvWidth);
        var expectedQ = CpuRun(q.Length, (b, o) => { b.Upload(q, o, 0); b.Rope(o, rows, heads, headDim, start, RopeTheta); });
        var expectedK = CpuRun(k.Length, (b, o) => { b.Upload(k, o, 0); b.Rope(o, rows, kvHeads, headDim, start, RopeTheta); });

        int capacity = start + rows;
        using var cache = gpu.Backend.AllocateKvCache(1, kvHeads, headDim, capacity);
        using var rope = RopeTable.Create(gpu.Backend.Memory, RopeTheta, headDim, capacity);
        using var position = gpu.Up(new[] { start });
        using var rowsOnDevice = gpu.Up(qkv);
        gpu.K.RotateAndStore(rowsOnDevice.View, rows, stride, heads, kvHeads, headDim, capacity, position.View, rope.Cos.View, rope.Sin.View, cache.LayerK(0), cache.LayerV(0));

        // The cache is [kvHeads, capacity, headDim]: gather row r's heads at position start + r.
        var keys = gpu.DownHalves(cache.LayerK(0), (long)kvHeads * capacity * headDim);
        var values = gpu.DownHalves(cache.LayerV(0), (long)kvHeads * capacity * headDim);
        float[] Cached(float[] all) => [.. Enumerable.Range(0, rows * kvWidth).Select(e =>
        {
            int r = e / kvWidth;
            int h = (e % kvWidth) / headDim;
            return all[((((long)h * capacity) + start + r) * headDim) + (e % headDim)];
        })];
        Assert.Multiple(() =>
        {
            Assert.That(Numerics.RelativeL2(Columns(gpu.Down(rowsOnDevice, qkv.Length), rows, stride, 0, qWidth), expectedQ), Is.LessThan(Fp32Tolerance), "q");
            Assert.That(Numerics.RelativeL2(Cached(keys), expectedK), Is.LessThan(HalfTolerance), "cached k");
            Assert.That(Numerics.RelativeL2(Cached(values), v), Is.LessThan(HalfTolerance), "cached v");
        });
    }

    /// <summary>
    /// Attention as a session runs it: keys and values of positions 0..start+rows-1 stored by the fused RoPE store into
    /// one layer of the cache, then the last rows' queries attend through CudaAttention (split keys below
    /// PrefillAttentionKernels.MinRows rows, as decode steps and verification passes split them; the tensor-core
    /// kernel from there on a GPU), written as fp16 in natural order.
    /// </summary>
    [TestCase("sim", 8, 2, 32, 1, 300, 2)]
    [TestCase("sim", 8, 1, 128, 5, 20, 1)]
    [TestCase("sim", 4, 4, 64, 1, 0, 1)]
    [TestCase("gpu", 64, 8, 128, 1, 8191, 48, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 300, 100, 2, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 1, 2047, 3, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 1, 100, 2, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 1, 300, 2, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 15, 1000, 1, Category = "Gpu")]

    // From PrefillAttentionKernels.MinRows rows the tensor-core kernel: one whole 64-row tile from position 0, a
    // partial tile far into the context, and one KV head for eight query heads (the mini fixtures' shape).
    [TestCase("gpu", 64, 8, 128, 64, 0, 1, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 17, 4000, 1, Category = "Gpu")]
    [TestCase("gpu", 8, 1, 128, 200, 37, 1, Category = "Gpu")]
    public void Attention_matches_the_cpu(string kind, int heads, int kvHeads, int headDim, int rows, int start, int layers)
    {
        using var gpu = new Gpu(kind);
        var inputs = new AttentionInputs(new Random(heads + kvHeads + rows + start), heads, kvHeads, headDim, start + rows);
        int capacity = start + rows + 7;
        var expected = inputs.CpuAttention(start, layers, capacity);
        using var stored = new StoredAttention(gpu, inputs, layers, capacity);
        int splits = rows < PrefillAttentionKernels.MinRows ? CudaAttention.DecodeSplits(gpu.Device, kvHeads, heads, capacity) : 1;
        Assert.That(Numerics.RelativeL2(Halves(stored.Attend(start, rows, splits)), expected), Is.LessThan(AttentionTolerance));
    }

    /// <summary>
    /// Decode attention with its keys split over blocks as a decode step and a verification launch it (on the CPU
    /// accelerator's one multiprocessor DecodeSplits gives 1, so the splits are explicit), against the CPU, and every row
    /// of the batch the same fp16 bits as that row alone. A split is a run of whole 64-key tiles (AttentionKernels.TileKeys):
    /// rows on both sides of a tile boundary, where a row's output moves from the attention kernel (one split with keys)
    /// to the combine (60 + 8 rows cross 64), or the used splits and tiles per split change (188 + 8 rows cross 192 with 3
    /// splits: 3 splits of one tile, then 2 of two); a long row whose splits hold several tiles with a partial last tile
    /// and fewer used splits than launched (1000: 16 tiles over 4 of 5 splits); a few tokens (0 + 6 rows); query groups
    /// below 8 heads and head dims below 128, 12 heads on one KV head (two head groups, the second of 4 heads), and a
    /// head dim of 34 (rows only 4-byte aligned: the word-by-word loads).
    /// </summary>
    [TestCase("sim", 8, 2, 32, 120, 15, 4)]
    [TestCase("sim", 8, 2, 64, 250, 10, 3)]
    [TestCase("sim", 8, 2, 64, 60, 8, 4)]
    [TestCase("sim", 8, 2, 32, 0, 6, 4)]
    [TestCase("sim", 8, 2, 32, 1000, 2, 5)]
    [TestCase("sim", 12, 1, 64, 188, 8, 3)]
    [TestCase("sim", 8, 4, 34, 130, 3, 2)]
    [TestCase("gpu", 64, 8, 128, 120, 15, 8, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 2040, 15, 8, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 0, 15, 33, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 4090, 15, 33, Category = "Gpu")]
    [TestCase("gpu", 64, 8, 128, 8180, 12, 33, Category = "Gpu")]
    public void Split_attention_matches_the_cpu_and_a_row_is_the_same_bits_alone_and_in_a_batch(string kind, int heads, int kvHeads, int headDim, int start, int rows, int splits)
    {
        using var gpu = new Gpu(kind);
        var inputs = new AttentionInputs(new Random(heads + headDim + start + rows), heads, kvHeads, headDim, start + rows);
        int capacity = start + rows + 7;
        var expected = inputs.CpuAttention(start, layers: 1, capacity);
        using var stored = new StoredAttention(gpu, inputs, layers: 1, capacity);
        var batch = stored.Attend(start, rows, splits);
        Assert.That(Numerics.RelativeL2(Halves(batch), expected), Is.LessThan(AttentionTolerance));
        int width = inputs.QWidth;
        for (int r = 0; r < rows; r++)
        {
            Assert.That(batch[(r * width)..((r + 1) * width)], Is.EqualTo(stored.Attend(start + r, 1, splits)), $"row {r} of {rows} (position {start + r})");
        }
    }

    /// <summary>The fused SiLU: gate and up side by side in one row ([gate | up], as the fused gate_up GEMV writes them), written as fp16.</summary>
    [TestCase("sim", 3, 100)]
    [TestCase("gpu", 4, 22016, Category = "Gpu")]
    public void SiluMultiply_matches_the_cpu(string kind, int rows, int width)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(rows * width);
        var gateUp = RandomWeights.Floats(rng, rows * 2 * width, 6);
        var gate = Columns(gateUp, rows, 2 * width, 0, width);
        var up = Columns(gateUp, rows, 2 * width, width, width);
        var expected = CpuRun(rows * width, (b, o) =>
        {
            using var ub = Up(b, up);
            b.Upload(gate, o, 0);
            b.SiluMultiply(o, ub, rows * width);
        });

        using var input = gpu.Up(gateUp);
        using var output = gpu.Zeros<ushort>(rows * width);
        gpu.K.SiluMultiplyToHalf(input.View, output.View, rows, width, gpu.NaturalLayout);
        Assert.That(Numerics.RelativeL2(gpu.DownHalves(output.View, rows * width), expected), Is.LessThan(HalfTolerance));
    }

    [TestCase("sim", 50, 64)]
    [TestCase("gpu", 32000, 8192, Category = "Gpu")]
    public void Embed_matches_the_cpu(string kind, int vocab, int hidden)
    {
        using var gpu = new Gpu(kind);
        var rng = new Random(vocab);
        var table = TensorData.FromArray("embed", TensorDType.F16, [vocab, hidden], RandomWeights.Floats(rng, vocab * hidden).Select(v => (System.Half)v).ToArray());
        int[] ids = [1, vocab - 1, 7, 1];
        var expected = CpuRun(ids.Length * hidden, (b, o) =>
        {
            using var t = b.PrepareEmbedding(table);
            b.Embed(t, ids, o);
        });

        using var embedding = gpu.Staged(upload => CudaEmbedding.Upload(upload, table));
        using var idsOnDevice = gpu.Up(ids);
        using var output = gpu.Up(Poison(ids.Length * hidden));
        gpu.K.Embed(idsOnDevice.View, embedding.Table.View, output.View, ids.Length, hidden);
        Assert.That(Numerics.RelativeL2(gpu.Down(output, ids.Length * hidden), expected), Is.LessThan(Fp32Tolerance));
    }

    private static float[] CpuLinear(LinearWeights w, float[] x, int rows) => CpuRun(rows * w.OutFeatures, (b, o) =>
    {
        using var lin = b.PrepareLinear(w);
        using var input = Up(b, x);
        b.Linear(lin, input, o, rows);
    });

    /// <summary>Runs <paramref name="op"/> on the CPU backend into a poisoned output of n floats and returns it.</summary>
    private static float[] CpuRun(int n, Action<IComputeBackend, DeviceBuffer> op)
    {
        using var o = Cpu.Allocate(n);
        Cpu.Upload(Poison(n), o, 0);
        op(Cpu, o);
        var r = new float[n];
        Cpu.Download(o, 0, r);
        return r;
    }

    /// <summary>An output filled with 1e6, so an element a kernel fails to write shows up as a large error.</summary>
    private static float[] Poison(int n) => Enumerable.Repeat(1e6f, n).ToArray();

    /// <summary>
    /// <see cref="Poison"/> for an fp16 output: its largest value, as 1e6 is beyond fp16. Not NaN: a NaN error passes
    /// Is.LessThan (NUnit orders NaN below every number).
    /// </summary>
    private static ushort[] HalfPoison(int n) => Enumerable.Repeat(BitConverter.HalfToUInt16Bits(System.Half.MaxValue), n).ToArray();

    private static float[] Halves(ushort[] bits) => [.. bits.Select(b => (float)BitConverter.UInt16BitsToHalf(b))];

    private static int[] Bits(float[] values) => [.. values.Select(BitConverter.SingleToInt32Bits)];

    /// <summary>The fp16 input layout of a 4-bit GPTQ layer with act-order (the permutation maps feature k to its sorted position).</summary>
    private static InputLayoutArgs GptqLayout(MemoryBuffer1D<int, Stride1D.Dense> inversePermutation) =>
        new() { Bits = 4, HasPermutation = 1, InversePermutation = inversePermutation.View };

    private static DeviceBuffer Up(IComputeBackend b, float[] values)
    {
        var buf = b.Allocate(values.Length);
        b.Upload(values, buf, 0);
        return buf;
    }

    /// <summary>Columns [from, from + width) of each row of a row-major [rows, stride] matrix.</summary>
    private static float[] Columns(float[] matrix, int rows, int stride, int from, int width) =>
        [.. Enumerable.Range(0, rows).SelectMany(r => matrix.AsSpan((r * stride) + from, width).ToArray())];

    /// <summary>The CUDA side of a comparison: a backend on the test device and the engine's own upload and launch paths.</summary>
    private sealed class Gpu : IDisposable
    {
        private readonly MemoryBuffer1D<int, Stride1D.Dense> noPermutation;

        public Gpu(string kind)
        {
            Backend = new CudaBackend(TestDevices.Get(kind), ownsDevice: false);
            Device.UseCublas = kind != "gpu-builtin";
            noPermutation = Zeros<int>(1);
        }

        public CudaBackend Backend { get; }

        public CudaDevice Device => Backend.Device;

        public CudaKernels K => Device.Kernels;

        /// <summary>fp16 in natural order, as a dense layer reads its input (the permutation view is a stand-in, never read).</summary>
        public InputLayoutArgs NaturalLayout => new() { Bits = 16, InversePermutation = noPermutation.View };

        public MemoryBuffer1D<T, Stride1D.Dense> Up<T>(T[] values)
            where T : unmanaged => Backend.Memory.Upload(values, "test data");

        public MemoryBuffer1D<T, Stride1D.Dense> Zeros<T>(long length)
            where T : unmanaged
        {
            var buffer = Backend.Memory.Allocate<T>(length, "test data");
            buffer.MemSetToZero(Device.Stream);
            return buffer;
        }

        public T[] Down<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, long length)
            where T : unmanaged
        {
            var result = new T[length];
            buffer.View.SubView(0, length).CopyToCPU(Device.Stream, result);
            Device.Synchronize();
            return result;
        }

        public float[] DownHalves(ArrayView<ushort> view, long length)
        {
            var bits = new ushort[length];
            view.SubView(0, length).CopyToCPU(Device.Stream, bits);
            Device.Synchronize();
            return Halves(bits);
        }

        /// <summary>Uploads through one StagedUpload, as CudaModel.Load does.</summary>
        public T Staged<T>(Func<StagedUpload, T> prepare)
        {
            using var upload = new StagedUpload(Device, Backend.Memory);
            var prepared = prepare(upload);
            upload.Finish();
            return prepared;
        }

        /// <summary>
        /// The engine's path for a linear layer whose input is not produced in its layout (RunShared for act-order layers):
        /// fp32 rows converted into the layer's fp16 input layout, then its GEMV or GEMM. With <paramref name="residual"/>
        /// the output starts as it and the layer adds to it, as o_proj and down_proj add to the residual stream.
        /// </summary>
        public float[] Linear(LinearWeights w, float[] x, int rows, float[]? residual = null)
        {
            using var linear = Staged(upload => CudaLinear.Upload(upload, w));
            K.ReserveDequantized(Backend.Memory, (long)w.InFeatures * w.OutFeatures);
            using var input = Up(x);
            using var half = Zeros<uint>(((long)rows * w.InFeatures) + 4);
            using var output = Up(residual ?? Poison(rows * w.OutFeatures));
            K.ToHalfLayout(input.View, half.View.AsContiguous().Cast<ushort>(), rows, w.InFeatures, linear.InputLayout);
            linear.Run(K, half.View, output.View, rows, w.OutFeatures, accumulate: residual != null);
            return Down(output, rows * w.OutFeatures);
        }

        /// <summary>
        /// RunShared's path for separate parts: each part's fp16 input in its own layout and buffer, then one small-batch
        /// launch (<see cref="CudaLinear.TryRunSmallBatch"/>) into consecutive columns of a poisoned [rows, sum of out] output.
        /// </summary>
        public float[] LinearParts(LinearWeights[] ws, float[] x, int rows)
        {
            var linears = ws.Select(w => Staged(upload => CudaLinear.Upload(upload, w))).ToArray();
            int inF = ws[0].InFeatures;
            int width = ws.Sum(w => w.OutFeatures);
            using var input = Up(x);
            var halves = linears.Select(_ => Zeros<uint>(((long)rows * inF) + 4)).ToArray();
            using var output = Up(Poison(rows * width));
            try
            {
                for (int p = 0; p < linears.Length; p++)
                {
                    K.ToHalfLayout(input.View, halves[p].View.AsContiguous().Cast<ushort>(), rows, inF, linears[p].InputLayout);
                }

                bool ran = CudaLinear.TryRunSmallBatch(K, linears, [.. halves.Select(h => h.View)], output.View, rows, width, accumulate: false);
                Assert.That(ran, Is.True, "the parts share one small-batch launch");
                return Down(output, rows * width);
            }
            finally
            {
                foreach (var h in halves)
                {
                    h.Dispose();
                }

                foreach (var l in linears)
                {
                    l.Dispose();
                }
            }
        }

        /// <summary>
        /// A GPTQ layer dequantized for cuBLAS, in two column slices (the second starting mid-layer, inside a packed zero
        /// word at 4 bits where the split is not a multiple of 8), and
        /// its fp16 input as the layout's producers write it: ([in, out] row-major, [rows, in]).
        /// </summary>
        public (float[] Weights, float[] Input) Dequantized(GptqLinearWeights w, float[] x, int rows)
        {
            using var linear = Staged(upload => CudaLinear.Upload(upload, w));
            using var input = Up(x);
            using var half = Zeros<uint>(((long)rows * w.InFeatures) + 4);
            K.ToHalfLayout(input.View, half.View.AsContiguous().Cast<ushort>(), rows, w.InFeatures, linear.InputLayout);
            int split = w.OutFeatures / 2 / 4 * 4;
            long firstWords = (long)w.InFeatures * split / 2;
            using var scratch = Zeros<uint>((long)w.InFeatures * w.OutFeatures / 2);
            var args = linear.GptqArgs(half.View, input.View, w.OutFeatures, accumulate: false);
            K.Dequantize(args, scratch.View.SubView(0, firstWords), 0, split);
            K.Dequantize(args, scratch.View.SubView(firstWords, scratch.Length - firstWords), split, w.OutFeatures - split);
            var slices = DownHalves(scratch.View.AsContiguous().Cast<ushort>(), (long)w.InFeatures * w.OutFeatures);
            var weights = new float[slices.Length];
            for (int k = 0; k < w.InFeatures; k++)
            {
                for (int n = 0; n < w.OutFeatures; n++)
                {
                    weights[((long)k * w.OutFeatures) + n] = n < split
                        ? slices[((long)k * split) + n]
                        : slices[(2 * firstWords) + ((long)k * (w.OutFeatures - split)) + n - split];
                }
            }

            return (weights, DownHalves(half.View.AsContiguous().Cast<ushort>(), (long)rows * w.InFeatures));
        }

        /// <summary>
        /// RMSNorm of rows [first, first + rows) of x as the engine launches it, into fp16 in <paramref name="layout"/>
        /// (a poisoned output). x goes up whole and a row alone is read at its offset, 16-byte
        /// aligned for a width that is a multiple of 4, so it takes the split-row kernel as a decode step's row does.
        /// </summary>
        public ushort[] RmsNorm(float[] x, CudaBuffer weight, int width, int first, int rows, InputLayoutArgs layout)
        {
            using var input = Up(x);
            var view = input.View.SubView((long)first * width, (long)rows * width);
            using var toHalf = Up(HalfPoison(rows * width));
            K.RmsNormToHalf(view, weight.Buffer.View, toHalf.View, rows, width, NormEps, layout);
            return Down(toHalf, rows * width);
        }

        public void Dispose()
        {
            Device.UseCublas = true;
            noPermutation.Dispose();
            Backend.Dispose();
        }
    }

    /// <summary>Random queries, keys and values of positions 0..Positions-1 for one attention layer.</summary>
    private sealed class AttentionInputs
    {
        public AttentionInputs(Random rng, int heads, int kvHeads, int headDim, int positions)
        {
            Heads = heads;
            KvHeads = kvHeads;
            HeadDim = headDim;
            Positions = positions;
            Q = RandomWeights.Floats(rng, positions * QWidth, 2);
            Keys = RandomWeights.Floats(rng, positions * KvWidth, 2);
            Values = RandomWeights.Floats(rng, positions * KvWidth);
        }

        public int Heads { get; }

        public int KvHeads { get; }

        public int HeadDim { get; }

        public int Positions { get; }

        public float[] Q { get; }

        public float[] Keys { get; }

        public float[] Values { get; }

        public int QWidth => Heads * HeadDim;

        public int KvWidth => KvHeads * HeadDim;

        /// <summary>Row width of <see cref="QkvRows"/>.</summary>
        public int Stride => QWidth + (2 * KvWidth);

        /// <summary>The inputs as the fused qkv GEMV writes them: one [q | k | v] row per position.</summary>
        public float[] QkvRows()
        {
            var qkv = new float[Positions * Stride];
            for (int p = 0; p < Positions; p++)
            {
                Q.AsSpan(p * QWidth, QWidth).CopyTo(qkv.AsSpan(p * Stride));
                Keys.AsSpan(p * KvWidth, KvWidth).CopyTo(qkv.AsSpan((p * Stride) + QWidth));
                Values.AsSpan(p * KvWidth, KvWidth).CopyTo(qkv.AsSpan((p * Stride) + QWidth + KvWidth));
            }

            return qkv;
        }

        /// <summary>The oracle: the CPU's attention of positions start..Positions-1 over the last of <paramref name="layers"/> layers, RoPE on q and k.</summary>
        public float[] CpuAttention(int start, int layers, int capacity)
        {
            int rows = Positions - start;
            return CpuRun(rows * QWidth, (b, o) =>
            {
                using var cache = b.AllocateKvCache(layers, KvHeads, HeadDim, capacity);
                using var kb = Up(b, Keys);
                using var vb = Up(b, Values);
                using var qb = Up(b, Q[(start * QWidth)..]);
                b.Rope(kb, Positions, KvHeads, HeadDim, 0, RopeTheta);
                b.Rope(qb, rows, Heads, HeadDim, start, RopeTheta);
                b.StoreKv(cache, layers - 1, kb, vb, 0, Positions);
                b.Attention(qb, cache, layers - 1, o, Heads, start, rows);
            });
        }
    }

    /// <summary>
    /// <see cref="AttentionInputs"/> on the device as a session holds them: the qkv rows with q rotated in place, k and v
    /// rotated and stored into the last layer of a cache by the fused RoPE store, and one CudaAttention that reads the
    /// position of its first row from a device-side counter (its partials reused from launch to launch, as a session's are).
    /// </summary>
    private sealed class StoredAttention : IDisposable
    {
        private readonly Gpu gpu;
        private readonly AttentionInputs inputs;
        private readonly int layer;
        private readonly CudaKvCache kv;
        private readonly MemoryBuffer1D<int, Stride1D.Dense> position;
        private readonly MemoryBuffer1D<float, Stride1D.Dense> qkv;
        private readonly CudaAttention attention;

        public StoredAttention(Gpu gpu, AttentionInputs inputs, int layers, int capacity)
        {
            this.gpu = gpu;
            this.inputs = inputs;
            layer = layers - 1;
            kv = gpu.Backend.AllocateKvCache(layers, inputs.KvHeads, inputs.HeadDim, capacity);
            position = gpu.Up(new[] { 0 });
            qkv = gpu.Up(inputs.QkvRows());
            attention = new CudaAttention(gpu.Device, gpu.Backend.Memory, position.View);
            using var rope = RopeTable.Create(gpu.Backend.Memory, RopeTheta, inputs.HeadDim, capacity);
            gpu.K.RotateAndStore(qkv.View, inputs.Positions, inputs.Stride, inputs.Heads, inputs.KvHeads, inputs.HeadDim, capacity, position.View, rope.Cos.View, rope.Sin.View, kv.LayerK(layer), kv.LayerV(layer));

            // The table is freed on leaving; the store must have read it.
            gpu.Device.Synchronize();
        }

        /// <summary>
        /// Attention of <paramref name="rows"/> query rows from position <paramref name="first"/>, keys split in
        /// <paramref name="splits"/> below PrefillAttentionKernels.MinRows rows: fp16 bits in natural order (a poisoned output).
        /// </summary>
        public ushort[] Attend(int first, int rows, int splits)
        {
            using var output = gpu.Up(HalfPoison(rows * inputs.QWidth));
            position.View.CopyFromCPU(gpu.Device.Stream, new[] { first });
            attention.Run(qkv.View.SubView((long)first * inputs.Stride, (long)rows * inputs.Stride), inputs.Stride, kv, layer, inputs.Heads, rows, splits, output.View, gpu.NaturalLayout);
            return gpu.Down(output, rows * inputs.QWidth);
        }

        public void Dispose()
        {
            attention.Dispose();
            qkv.Dispose();
            position.Dispose();
            kv.Dispose();
        }
    }
}
