// Random GPTQ and dense layers in the exact AutoGPTQ tensor layout (FACTS.md), for backend-ops tests:
// values and zeros drawn at random, optional act-order g_idx (a random permutation, G rows per group).
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

internal static class RandomWeights
{
    public static GptqLinearWeights Gptq(Random rng, int inF, int outF, int bits, int groupSize, bool actOrder, bool v2 = false, bool bias = false)
    {
        int g = groupSize <= 0 ? inF : groupSize;
        int rpw = 32 / bits;
        int groups = (inF + g - 1) / g;
        var qweight = new int[inF / rpw * outF];
        for (int i = 0; i < qweight.Length; i++)
        {
            qweight[i] = rng.Next(int.MinValue, int.MaxValue);
        }

        var qzeros = new int[groups * outF / rpw];
        uint zmax = (1u << bits) - 1;
        for (int i = 0; i < qzeros.Length; i++)
        {
            uint word = 0;
            for (int j = 0; j < rpw; j++)
            {
                // v1 stores zero - 1, so keep the stored value below the top so zero + 1 still fits the range.
                word |= (uint)rng.Next(0, (int)zmax) << (bits * j);
            }

            qzeros[i] = (int)word;
        }

        var scales = new Half[groups * outF];
        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = (Half)(0.002 + (rng.NextDouble() * 0.01));
        }

        TensorData? gidx = null;
        if (actOrder)
        {
            var perm = Permutation(rng, inF);
            var map = new int[inF];
            for (int i = 0; i < inF; i++)
            {
                map[perm[i]] = i / g;
            }

            gidx = TensorData.FromArray("g_idx", TensorDType.I32, [inF], map);
        }

        TensorData? b = null;
        if (bias)
        {
            b = TensorData.FromArray("bias", TensorDType.F16, [outF], Enumerable.Range(0, outF).Select(_ => (Half)(rng.NextDouble() - 0.5)).ToArray());
        }

        return new GptqLinearWeights(
            $"test.{bits}bit.g{groupSize}{(actOrder ? ".actorder" : string.Empty)}",
            inF,
            outF,
            bits,
            g,
            v2,
            TensorData.FromArray("qweight", TensorDType.I32, [inF / rpw, outF], qweight),
            TensorData.FromArray("qzeros", TensorDType.I32, [groups, outF / rpw], qzeros),
            TensorData.FromArray("scales", TensorDType.F16, [groups, outF], scales),
            gidx,
            b);
    }

    public static DenseLinearWeights Dense(Random rng, int inF, int outF)
    {
        var w = Enumerable.Range(0, inF * outF).Select(_ => (Half)((rng.NextDouble() - 0.5) * 0.1)).ToArray();
        return new DenseLinearWeights("test.dense", inF, outF, TensorData.FromArray("weight", TensorDType.F16, [outF, inF], w), null);
    }

    public static float[] Floats(Random rng, int n, double scale = 1.0) =>
        Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    /// <summary>0..n-1 in random order.</summary>
    public static int[] Permutation(Random rng, int n) => [.. Enumerable.Range(0, n).OrderBy(_ => rng.Next())];

    public static TensorData Vector(Random rng, int n) =>
        TensorData.FromArray("vector", TensorDType.F16, [n], Enumerable.Range(0, n).Select(_ => (Half)(0.5 + rng.NextDouble())).ToArray());
}
