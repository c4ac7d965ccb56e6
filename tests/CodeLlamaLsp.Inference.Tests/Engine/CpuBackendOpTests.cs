// Every CPU op against a plain formula on random inputs: GPTQ linears in every layout variant, dense
// linears, embedding lookup, RoPE and causal grouped-query attention. Tolerances are relative L2 errors.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Engine;

public class CpuBackendOpTests
{
    /// <summary>fp32 accumulation against a double-precision reference.</summary>
    private const double Fp32Tolerance = 1e-5;

    private static readonly GptqVariant[] Variants =
    [
        new(4, 32, ActOrder: false),
        new(4, 128, ActOrder: true),
        new(8, -1, ActOrder: true),
        new(8, 64, ActOrder: true, WithBias: true),
        new(4, 32, ActOrder: false, ZerosAreV2: true, WithBias: true),
        new(4, 24, ActOrder: false),
        new(4, 32, ActOrder: false, UnevenGroups: true),
        new(8, 32, ActOrder: false, ZerosAreV2: true, UnevenGroups: true),
    ];

    private readonly CpuBackend _backend = new();

    [Test]
    public void Gptq_linear_matches_the_dequantized_matmul([ValueSource(nameof(Variants))] GptqVariant variant, [Values(1, 5)] int rows)
    {
        const int inF = 256, outF = 48;
        var (weights, w, bias) = RandomGptq.Create(inF, outF, variant, seed: 11);
        var x = RandomGptq.RandomVector(rows * inF, seed: 12);

        var y = RunLinear(weights, x, rows);

        Assert.That(RelativeL2(y, RandomGptq.Reference(x, rows, w, bias, inF, outF)), Is.LessThan(Fp32Tolerance));
    }

    [Test]
    public void Dense_linear_uses_the_hf_out_by_in_layout_and_bias([Values(TensorDType.F16, TensorDType.BF16, TensorDType.F32)] TensorDType dtype)
    {
        const int inF = 64, outF = 70, rows = 3;
        var values = RandomGptq.RandomVector(outF * inF, seed: 3);
        var tensor = dtype switch
        {
            TensorDType.F16 => TensorData.FromArray("w", dtype, [outF, inF], values.Select(v => (Half)v).ToArray()),
            TensorDType.BF16 => TensorData.FromArray("w", dtype, [outF, inF], values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >>> 16)).ToArray()),
            _ => TensorData.FromArray("w", dtype, [outF, inF], values),
        };
        var exact = tensor.ToFloat32();
        var bias = RandomGptq.RandomVector(outF, seed: 4);
        var x = RandomGptq.RandomVector(rows * inF, seed: 5);
        var transposed = new float[inF * outF];
        for (int n = 0; n < outF; n++)
        {
            for (int k = 0; k < inF; k++)
            {
                transposed[(k * outF) + n] = exact[(n * inF) + k];
            }
        }

        var y = RunLinear(new DenseLinearWeights("lm_head", inF, outF, tensor, TensorData.FromArray("b", TensorDType.F32, [outF], bias)), x, rows);

        Assert.That(RelativeL2(y, RandomGptq.Reference(x, rows, transposed, bias, inF, outF)), Is.LessThan(Fp32Tolerance));
    }

    [Test]
    public void Gptq_tensors_with_the_wrong_shape_are_refused_by_name()
    {
        var (weights, _, _) = RandomGptq.Create(64, 16, new GptqVariant(4, 32, ActOrder: false), seed: 1);
        var broken = weights with { Scales = TensorData.FromArray("layer.scales", TensorDType.F16, [3, 16], new Half[48]) };

        Assert.That(() => _backend.PrepareLinear(broken), Throws.ArgumentException.With.Message.Contains("layer.scales").And.Message.Contains("[2, 16]"));
    }

    [Test]
    public void Rope_rotates_half_pairs_by_position_times_inverse_frequency()
    {
        const int heads = 2, headDim = 8, rows = 3, start = 5;
        const float theta = 10000f;
        var x = RandomGptq.RandomVector(rows * heads * headDim, seed: 8);
        var expected = (float[])x.Clone();
        for (int t = 0; t < rows; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < headDim / 2; i++)
                {
                    double angle = (start + t) * Math.Pow(theta, -2.0 * i / headDim);
                    int a = (((t * heads) + h) * headDim) + i, b = a + (headDim / 2);
                    expected[a] = (float)((x[a] * Math.Cos(angle)) - (x[b] * Math.Sin(angle)));
                    expected[b] = (float)((x[b] * Math.Cos(angle)) + (x[a] * Math.Sin(angle)));
                }
            }
        }

        using var buffer = Upload(x);
        _backend.Rope(buffer, rows, heads, headDim, start, theta);

        Assert.That(RelativeL2(Download(buffer), expected), Is.LessThan(Fp32Tolerance));
    }

    [Test]
    public void Attention_is_causal_and_shares_kv_heads_across_query_groups()
    {
        const int heads = 4, kvHeads = 2, headDim = 8, rows = 3, start = 2, positions = start + rows;
        var k = RandomGptq.RandomVector(positions * kvHeads * headDim, seed: 21);
        var v = RandomGptq.RandomVector(positions * kvHeads * headDim, seed: 22);
        var q = RandomGptq.RandomVector(rows * heads * headDim, seed: 23);
        using var cache = _backend.AllocateKvCache(layers: 1, kvHeads, headDim, capacity: 16);
        using (var kb = Upload(k))
        using (var vb = Upload(v))
        {
            _backend.StoreKv(cache, 0, kb, vb, 0, positions);
        }

        // Garbage beyond the last position must not be read: a causal mask ignores it.
        using (var junk = Upload(Enumerable.Repeat(1e6f, kvHeads * headDim).ToArray()))
        {
            _backend.StoreKv(cache, 0, junk, junk, positions, 1);
        }

        using var qb = Upload(q);
        using var output = _backend.Allocate(rows * heads * headDim);
        _backend.Attention(qb, cache, 0, output, heads, start, rows);

        var expected = new float[rows * heads * headDim];
        for (int t = 0; t < rows; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kh = h / (heads / kvHeads);
                var scores = Enumerable.Range(0, start + t + 1).Select(j =>
                    Enumerable.Range(0, headDim).Sum(d => (double)q[(((t * heads) + h) * headDim) + d] * k[(((j * kvHeads) + kh) * headDim) + d]) / Math.Sqrt(headDim)).ToArray();
                var weights = scores.Select(s => Math.Exp(s - scores.Max())).ToArray();
                for (int d = 0; d < headDim; d++)
                {
                    expected[(((t * heads) + h) * headDim) + d] = (float)(Enumerable.Range(0, weights.Length).Sum(j => weights[j] * v[(((j * kvHeads) + kh) * headDim) + d]) / weights.Sum());
                }
            }
        }

        Assert.That(RelativeL2(Download(output), expected), Is.LessThan(Fp32Tolerance));
    }

    [Test]
    public void Embedding_rows_are_looked_up_and_unknown_ids_refused()
    {
        var table = new Half[] { (Half)1, (Half)2, (Half)3, (Half)4, (Half)5, (Half)6 };
        var embedding = _backend.PrepareEmbedding(TensorData.FromArray("embed", TensorDType.F16, [3, 2], table));
        using var output = _backend.Allocate(4);

        _backend.Embed(embedding, [2, 0], output);

        Assert.Multiple(() =>
        {
            Assert.That(Download(output), Is.EqualTo(new[] { 5f, 6f, 1f, 2f }));
            Assert.That(() => _backend.Embed(embedding, [3], output), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Token id 3"));
        });
    }

    private float[] RunLinear(LinearWeights weights, float[] x, int rows)
    {
        using var prepared = _backend.PrepareLinear(weights);
        using var input = Upload(x);
        using var output = _backend.Allocate(rows * weights.OutFeatures);
        _backend.Linear(prepared, input, output, rows);
        return Download(output);
    }

    private DeviceBuffer Upload(float[] values)
    {
        var buffer = _backend.Allocate(values.Length);
        _backend.Upload(values, buffer, 0);
        return buffer;
    }

    private float[] Download(DeviceBuffer buffer)
    {
        var values = new float[buffer.Length];
        _backend.Download(buffer, 0, values);
        return values;
    }

    private static double RelativeL2(float[] actual, float[] expected) => Numerics.RelativeL2(actual, expected);
}
