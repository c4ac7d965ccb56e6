// Builds random GPTQ linears in the AutoGPTQ layout together with their dequantized fp32 matrix, so a
// backend's GPTQ kernel can be checked against the plain formula on every layout variant (bits, group
// size, act-order, uneven groups, v1/v2 zeros, bias). The CUDA backend's op tests can use it as well.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Engine;

/// <summary>How the random GPTQ linear is laid out.</summary>
public sealed record GptqVariant(int Bits, int GroupSize, bool ActOrder, bool ZerosAreV2 = false, bool WithBias = false, bool UnevenGroups = false)
{
    public override string ToString() =>
        $"{Bits}bit-g{GroupSize}{(ActOrder ? "-actorder" : string.Empty)}{(UnevenGroups ? "-uneven" : string.Empty)}{(ZerosAreV2 ? "-v2" : string.Empty)}{(WithBias ? "-bias" : string.Empty)}";
}

internal static class RandomGptq
{
    /// <summary>A random GPTQ linear [in -> out] and its dequantized weight W [in, out] (y = x W + bias).</summary>
    public static (GptqLinearWeights Weights, float[] Dequantized, float[]? Bias) Create(int inF, int outF, GptqVariant v, int seed)
    {
        var random = new Random(seed);
        int pack = 32 / v.Bits;
        int levels = 1 << v.Bits;
        int groupSize = v.GroupSize < 0 ? inF : v.GroupSize;
        int groups = (inF + groupSize - 1) / groupSize;

        var groupOfRow = new int[inF];
        if (v.UnevenGroups)
        {
            for (int k = 0; k < inF; k++)
            {
                groupOfRow[k] = random.Next(groups);
            }
        }
        else if (v.ActOrder)
        {
            // GPTQ's act-order: rows are quantized in a permuted order, g_idx[perm[i]] = i / group size.
            var perm = Enumerable.Range(0, inF).OrderBy(_ => random.Next()).ToArray();
            for (int i = 0; i < inF; i++)
            {
                groupOfRow[perm[i]] = i / groupSize;
            }
        }
        else
        {
            for (int k = 0; k < inF; k++)
            {
                groupOfRow[k] = k / groupSize;
            }
        }

        var q = new int[inF, outF];
        var qweight = new int[inF / pack * outF];
        for (int k = 0; k < inF; k++)
        {
            for (int n = 0; n < outF; n++)
            {
                q[k, n] = random.Next(levels);
                qweight[((k / pack) * outF) + n] |= q[k, n] << (v.Bits * (k % pack));
            }
        }

        var stored = new int[groups, outF];
        var qzeros = new int[groups * outF / pack];
        var scales = new Half[groups * outF];
        for (int g = 0; g < groups; g++)
        {
            for (int n = 0; n < outF; n++)
            {
                // v1 adds one to the stored zero, so keep it below the top level there.
                stored[g, n] = random.Next(v.ZerosAreV2 ? levels : levels - 1);
                qzeros[((g * outF) + n) / pack] |= stored[g, n] << (v.Bits * (n % pack));
                scales[(g * outF) + n] = (Half)((random.NextDouble() * 0.02) + 0.001);
            }
        }

        var dequantized = new float[inF * outF];
        for (int k = 0; k < inF; k++)
        {
            int g = groupOfRow[k];
            for (int n = 0; n < outF; n++)
            {
                int zero = stored[g, n] + (v.ZerosAreV2 ? 0 : 1);
                dequantized[(k * outF) + n] = (float)scales[(g * outF) + n] * (q[k, n] - zero);
            }
        }

        Half[]? bias = v.WithBias ? Enumerable.Range(0, outF).Select(_ => (Half)(random.NextDouble() - 0.5)).ToArray() : null;
        string name = $"random.{v}";
        var weights = new GptqLinearWeights(
            name,
            inF,
            outF,
            v.Bits,
            groupSize,
            v.ZerosAreV2,
            TensorData.FromArray(name + ".qweight", TensorDType.I32, [inF / pack, outF], qweight),
            TensorData.FromArray(name + ".qzeros", TensorDType.I32, [groups, outF / pack], qzeros),
            TensorData.FromArray(name + ".scales", TensorDType.F16, [groups, outF], scales),
            v.ActOrder || v.UnevenGroups ? TensorData.FromArray(name + ".g_idx", TensorDType.I32, [inF], groupOfRow) : null,
            bias == null ? null : TensorData.FromArray(name + ".bias", TensorDType.F16, [outF], bias));
        return (weights, dequantized, bias?.Select(b => (float)b).ToArray());
    }

    /// <summary>y = x W (+ bias) in double precision, rounded to fp32.</summary>
    public static float[] Reference(float[] x, int rows, float[] w, float[]? bias, int inF, int outF)
    {
        var y = new float[rows * outF];
        for (int t = 0; t < rows; t++)
        {
            for (int n = 0; n < outF; n++)
            {
                double sum = bias?[n] ?? 0;
                for (int k = 0; k < inF; k++)
                {
                    sum += (double)x[(t * inF) + k] * w[(k * outF) + n];
                }

                y[(t * outF) + n] = (float)sum;
            }
        }

        return y;
    }

    public static float[] RandomVector(int n, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
    }
}
