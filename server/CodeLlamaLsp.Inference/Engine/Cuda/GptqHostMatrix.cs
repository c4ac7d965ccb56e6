// Load-time preparation of GPTQ layers on the host before upload: validation, act-order resolution
// (rows sorted by group once, with the inverse permutation kept for the activations, as exllama does),
// and column concatenation so q/k/v and gate/up run as one GEMV each.
using System.Runtime.InteropServices;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>A GPTQ layer in the layout the CUDA GEMV reads (rows sorted by group), still on the host.</summary>
internal sealed class GptqHostMatrix
{
    private GptqHostMatrix(string name, int inFeatures, int outFeatures, int bits, int groupSize, bool zerosAreV2, uint[] qweight, uint[] qzeros, ushort[] scales, ushort[]? bias, int[]? inversePermutation)
    {
        Name = name;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Bits = bits;
        GroupSize = groupSize;
        ZerosAreV2 = zerosAreV2;
        QWeight = qweight;
        QZeros = qzeros;
        Scales = scales;
        Bias = bias;
        InversePermutation = inversePermutation;
    }

    public string Name { get; }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public int Bits { get; }

    public int GroupSize { get; }

    public bool ZerosAreV2 { get; }

    public uint[] QWeight { get; } // [in / rpw, out]

    public uint[] QZeros { get; } // [groups, out / rpw]

    public ushort[] Scales { get; } // [groups, out]

    public ushort[]? Bias { get; } // [out] or null when absent or all zero

    public int[]? InversePermutation { get; } // [in] sorted position of input k, null without act-order

    public int RowsPerWord => 32 / Bits;

    public int Groups => (InFeatures + GroupSize - 1) / GroupSize;

    /// <summary>Validates and converts one checkpoint layer.</summary>
    public static GptqHostMatrix From(GptqLinearWeights w)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (w.Bits is not (4 or 8))
        {
            throw new NotSupportedException($"{w.Name}: the CUDA backend supports 4- and 8-bit GPTQ, not {w.Bits}-bit.");
        }

        int rpw = 32 / w.Bits;
        int g = w.GroupSize;
        if (w.InFeatures % (4 * rpw) != 0 || g % (4 * rpw) != 0 || w.OutFeatures % rpw != 0 || w.OutFeatures % 4 != 0)
        {
            throw new NotSupportedException(
                $"{w.Name}: the CUDA GEMV needs in_features and group_size to be multiples of {4 * rpw} and out_features a multiple of {Math.Max(4, rpw)}; got in {w.InFeatures}, group {g}, out {w.OutFeatures}.");
        }

        int groups = (w.InFeatures + g - 1) / g;
        Expect(w.QWeight, TensorDType.I32, (long)w.InFeatures / rpw * w.OutFeatures, w.Name);
        Expect(w.QZeros, TensorDType.I32, (long)groups * w.OutFeatures / rpw, w.Name);
        Expect(w.Scales, TensorDType.F16, (long)groups * w.OutFeatures, w.Name);
        var qweight = w.QWeight.As<uint>().ToArray();
        var qzeros = w.QZeros.As<uint>().ToArray();
        var scales = w.Scales.As<ushort>().ToArray();
        ushort[]? bias = null;
        if (w.Bias != null)
        {
            Expect(w.Bias, TensorDType.F16, w.OutFeatures, w.Name);
            var b = w.Bias.As<ushort>();
            if (b.ContainsAnyExcept((ushort)0) && b.ContainsAnyExcept((ushort)0x8000))
            {
                bias = b.ToArray();
            }
        }

        int[]? inverse = null;
        if (w.GIdx != null)
        {
            Expect(w.GIdx, TensorDType.I32, w.InFeatures, w.Name);
            var gidx = w.GIdx.As<int>();
            bool trivial = true;
            for (int k = 0; k < gidx.Length; k++)
            {
                if (gidx[k] < 0 || gidx[k] >= groups)
                {
                    throw new InvalidDataException($"{w.Name}.g_idx[{k}] = {gidx[k]} is outside 0..{groups - 1}.");
                }

                trivial &= gidx[k] == k / g;
            }

            if (!trivial)
            {
                inverse = SortRowsByGroup(qweight, gidx, w.InFeatures, w.OutFeatures, w.Bits, g, w.Name);
            }
        }

        return new GptqHostMatrix(w.Name, w.InFeatures, w.OutFeatures, w.Bits, g, w.ZerosAreV2, qweight, qzeros, scales, bias, inverse);
    }

    /// <summary>
    /// Concatenates layers that share their input (q/k/v, gate/up) along the output dimension, or returns
    /// null when they cannot share one GEMV (different bits, groups, zero format or act-order permutation).
    /// </summary>
    public static GptqHostMatrix? TryConcatenate(string name, IReadOnlyList<GptqHostMatrix> parts)
    {
        var first = parts[0];
        foreach (var p in parts)
        {
            if (p.InFeatures != first.InFeatures || p.Bits != first.Bits || p.GroupSize != first.GroupSize || p.ZerosAreV2 != first.ZerosAreV2)
            {
                return null;
            }

            if ((p.InversePermutation == null) != (first.InversePermutation == null)
                || (p.InversePermutation != null && !p.InversePermutation.AsSpan().SequenceEqual(first.InversePermutation)))
            {
                return null;
            }
        }

        int rpw = first.RowsPerWord;
        int outTotal = parts.Sum(p => p.OutFeatures);
        int words = first.InFeatures / rpw;
        int groups = first.Groups;
        var qweight = new uint[(long)words * outTotal];
        var qzeros = new uint[(long)groups * outTotal / rpw];
        var scales = new ushort[(long)groups * outTotal];
        ushort[]? bias = parts.Any(p => p.Bias != null) ? new ushort[outTotal] : null;
        int col = 0;
        foreach (var p in parts)
        {
            CopyColumns(p.QWeight, p.OutFeatures, qweight, outTotal, col, words);
            CopyColumns(p.QZeros, p.OutFeatures / rpw, qzeros, outTotal / rpw, col / rpw, groups);
            CopyColumns(p.Scales, p.OutFeatures, scales, outTotal, col, groups);
            p.Bias?.CopyTo(bias!, col);
            col += p.OutFeatures;
        }

        return new GptqHostMatrix(name, first.InFeatures, outTotal, first.Bits, first.GroupSize, first.ZerosAreV2, qweight, qzeros, scales, bias, first.InversePermutation);
    }

    private static void CopyColumns<T>(T[] src, int srcCols, T[] dst, int dstCols, int dstCol, int rows)
    {
        for (int r = 0; r < rows; r++)
        {
            Array.Copy(src, (long)r * srcCols, dst, ((long)r * dstCols) + dstCol, srcCols);
        }
    }

    /// <summary>
    /// Reorders packed rows so that group g occupies rows [g*G, (g+1)*G), and returns the inverse permutation
    /// (original input k -> sorted row). GPTQ act-order gives every group exactly G rows; anything else is refused.
    /// </summary>
    private static int[] SortRowsByGroup(uint[] qweight, ReadOnlySpan<int> gidx, int inFeatures, int outFeatures, int bits, int g, string name)
    {
        var perm = Enumerable.Range(0, inFeatures).ToArray();
        var keys = gidx.ToArray();
        Array.Sort(keys.ToArray(), perm); // Sort keys alongside original indices.
        Array.Sort(keys); // keys now sorted too.

        // Array.Sort is not stable; within a group the order of rows does not matter for the result.
        for (int i = 0; i < inFeatures; i++)
        {
            if (keys[i] != i / g)
            {
                throw new NotSupportedException($"{name}: g_idx does not give every group exactly {g} rows (sorted row {i} is in group {keys[i]}); this act-order layout is not supported.");
            }
        }

        int rpw = 32 / bits;
        uint mask = (1u << bits) - 1u;
        var original = (uint[])qweight.Clone();

        // One iteration per destination word row, so no two iterations write the same word.
        Parallel.For(0, inFeatures / rpw, wordRow =>
        {
            long dstRow = (long)wordRow * outFeatures;
            Array.Clear(qweight, (int)dstRow, outFeatures);
            for (int r = 0; r < rpw; r++)
            {
                int k = perm[(wordRow * rpw) + r];
                int srcShift = bits * (k % rpw);
                long srcRow = (long)(k / rpw) * outFeatures;
                for (int n = 0; n < outFeatures; n++)
                {
                    qweight[dstRow + n] |= ((original[srcRow + n] >> srcShift) & mask) << (bits * r);
                }
            }
        });

        var inverse = new int[inFeatures];
        for (int i = 0; i < inFeatures; i++)
        {
            inverse[perm[i]] = i;
        }

        return inverse;
    }

    private static void Expect(TensorData t, TensorDType dtype, long elements, string layer)
    {
        if (t.DType != dtype || t.ElementCount != elements)
        {
            throw new InvalidDataException($"{layer}: tensor '{t.Name}' is {t.DType} with {t.ElementCount} elements; expected {dtype} with {elements}.");
        }
    }

    /// <summary>Raw bytes of an array for uploads.</summary>
    public static ReadOnlySpan<byte> Bytes<T>(T[] values)
        where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan());
}
