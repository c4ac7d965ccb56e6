// The oracle for StagedUploadTests: the device layout as the load path before the staged pipeline built it, whole
// tensors in managed arrays (copied out of the checkpoint, act-order rows re-sorted in place, fused layers
// concatenated column block by column block, fp16 / fp32 conversions of whole tensors). Kept deliberately plain.
using System.Runtime.InteropServices;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

/// <summary>A GPTQ layer's device arrays; Bias and InversePermutation are null where the device gets a placeholder.</summary>
internal sealed record GptqArrays(int InFeatures, int OutFeatures, int Bits, int GroupSize, bool ZerosAreV2, uint[] QWeight, uint[] QZeros, ushort[] Scales, ushort[]? Bias, int[]? InversePermutation);

internal static class ArrayLayoutReference
{
    public static GptqArrays Gptq(GptqLinearWeights w)
    {
        int g = w.GroupSize;
        var qweight = w.QWeight.As<uint>().ToArray();
        ushort[]? bias = null;
        if (w.Bias != null)
        {
            var b = w.Bias.As<ushort>();
            if (b.ContainsAnyExcept((ushort)0) && b.ContainsAnyExcept((ushort)0x8000))
            {
                bias = b.ToArray();
            }
        }

        int[]? inverse = null;
        if (w.GIdx != null)
        {
            var gidx = w.GIdx.As<int>();
            bool trivial = true;
            for (int k = 0; k < gidx.Length; k++)
            {
                trivial &= gidx[k] == k / g;
            }

            if (!trivial)
            {
                inverse = SortRowsByGroup(qweight, gidx, w.InFeatures, w.OutFeatures, w.Bits);
            }
        }

        return new GptqArrays(w.InFeatures, w.OutFeatures, w.Bits, g, w.ZerosAreV2, qweight, w.QZeros.As<uint>().ToArray(), w.Scales.As<ushort>().ToArray(), bias, inverse);
    }

    /// <summary>Layers side by side, or null when they cannot share one GEMV.</summary>
    public static GptqArrays? Concatenate(IReadOnlyList<GptqArrays> parts)
    {
        var first = parts[0];
        foreach (var p in parts)
        {
            if (p.InFeatures != first.InFeatures || p.Bits != first.Bits || p.GroupSize != first.GroupSize || p.ZerosAreV2 != first.ZerosAreV2
                || (p.InversePermutation == null) != (first.InversePermutation == null)
                || (p.InversePermutation != null && !p.InversePermutation.AsSpan().SequenceEqual(first.InversePermutation)))
            {
                return null;
            }
        }

        int rpw = 32 / first.Bits;
        int outTotal = parts.Sum(p => p.OutFeatures);
        int words = first.InFeatures / rpw;
        int groups = first.Scales.Length / first.OutFeatures;
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

        return first with { OutFeatures = outTotal, QWeight = qweight, QZeros = qzeros, Scales = scales, Bias = bias };
    }

    /// <summary>fp16 bits of a whole F16, BF16 or F32 tensor.</summary>
    public static ushort[] HalfBits(TensorData t) =>
        t.DType == TensorDType.F16 ? t.As<ushort>().ToArray() : [.. Float32(t).Select(f => BitConverter.HalfToUInt16Bits((Half)f))];

    public static float[] Float32(TensorData t) => t.DType switch
    {
        TensorDType.F32 => t.As<float>().ToArray(),
        TensorDType.F16 => [.. MemoryMarshal.Cast<byte, Half>(t.Data.Span).ToArray().Select(h => (float)h)],
        TensorDType.BF16 => [.. t.As<ushort>().ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16))],
        _ => throw new ArgumentException(t.DType.ToString(), nameof(t)),
    };

    private static void CopyColumns<T>(T[] src, int srcCols, T[] dst, int dstCols, int dstCol, int rows)
    {
        for (int r = 0; r < rows; r++)
        {
            Array.Copy(src, (long)r * srcCols, dst, ((long)r * dstCols) + dstCol, srcCols);
        }
    }

    private static int[] SortRowsByGroup(uint[] qweight, ReadOnlySpan<int> gidx, int inFeatures, int outFeatures, int bits)
    {
        var perm = Enumerable.Range(0, inFeatures).ToArray();
        Array.Sort(gidx.ToArray(), perm);
        int rpw = 32 / bits;
        uint mask = (1u << bits) - 1u;
        var original = (uint[])qweight.Clone();
        for (int wordRow = 0; wordRow < inFeatures / rpw; wordRow++)
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
        }

        var inverse = new int[inFeatures];
        for (int i = 0; i < inFeatures; i++)
        {
            inverse[perm[i]] = i;
        }

        return inverse;
    }
}
