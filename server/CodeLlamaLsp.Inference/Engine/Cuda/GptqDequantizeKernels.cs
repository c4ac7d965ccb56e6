// GPTQ weights dequantized to fp16 for a library GEMM (cuBLAS in prefill, as ExLlamaV2 and llama.cpp do): a slice of a
// layer's columns becomes a row-major fp16 matrix [in, columns] whose rows follow the activation layout's storage
// order, so the GEMM multiplies the fp16 input rows exactly as their producers wrote them.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="GptqDequantizeKernels.ToHalf"/>: one launch dequantizes one column slice.</summary>
internal struct DequantizeArgs
{
    /// <summary>[in / rpw, out] packed words, rows in group order (act-order resolved at load time).</summary>
    public ArrayView<uint> QWeight;

    /// <summary>[groups, out / rpw] packed zeros.</summary>
    public ArrayView<uint> QZeros;

    /// <summary>[groups, out] fp16 bit patterns.</summary>
    public ArrayView<ushort> Scales;

    /// <summary>[in, Columns] fp16, four per word: row r is the input at storage position r of the activation layout.</summary>
    public ArrayView<ulong> Output;

    public int InFeatures;
    public int OutFeatures;
    public int Bits;
    public int GroupSize;

    /// <summary>1 for GPTQ v1 checkpoints (stored zero + 1), 0 for v2.</summary>
    public int ZeroOffset;

    /// <summary>First column of the slice (a multiple of 4).</summary>
    public int FirstColumn;

    /// <summary>Columns in the slice (a multiple of 4).</summary>
    public int Columns;
}

/// <summary>
/// One thread per (packed word row, 4 adjacent columns), grid-stride, neighbouring threads on neighbouring columns: a
/// warp's one 16-byte load per thread reads 512 contiguous bytes of a word row, and each of its stores writes 256
/// contiguous bytes of one output row, so reads and writes both run along rows (the next warp continues the run).
/// Two layouts lost (H200, 11-30): [columns, in] written straight from the loading thread (16-byte stores 16 KB apart
/// per lane) ran at 0.46 TB/s, and the same layout through a shared-memory transpose (512-byte runs per column) at
/// 1.2 TB/s under Nsight Compute. The magic-number trick gives a column's pairs along its inputs:
/// (word &gt;&gt; bits*i) &amp; 0x000F000F (0x00FF00FF at 8 bits) | 0x6400 is fp16 (1024 + q_i, 1024 + q_{i + rpw/2}),
/// the inputs at storage positions 2i and 2i + 1 of the word (<see cref="ActivationLayout"/>); subtracting 1024 + zero
/// is exact and the product with the scale rounds once, as in the built-in GEMM, so both paths multiply the same fp16
/// weights. Byte permutes then regroup four columns' pairs into the two output rows.
/// </summary>
internal static class GptqDequantizeKernels
{
    public const int BlockThreads = 256;

    /// <summary>Whether a layer can be dequantized here (and so multiplied by cuBLAS).</summary>
    public static bool Supports(int bits, int inFeatures, int outFeatures, int groupSize) =>
        (bits == 4 || bits == 8) && inFeatures % (32 / bits) == 0 && groupSize % (32 / bits) == 0 && outFeatures % 4 == 0;

    public static void ToHalf(DequantizeArgs a)
    {
        int rpw = 32 / a.Bits;
        int pairsPerWord = rpw / 2;
        uint mask = a.Bits == 4 ? 0x000F000Fu : 0x00FF00FFu;
        uint valueMask = (1u << a.Bits) - 1u;
        int quads = a.Columns / 4;
        int wordRows = a.InFeatures / rpw;
        int items = quads * wordRows;
        var words = a.QWeight.Cast<Words4>();
        var scales = a.Scales.Cast<ulong>();
        for (int i = Grid.GlobalIndex.X; i < items; i += Grid.DimX * Group.DimX)
        {
            int w = i / quads;
            int c = (i - (w * quads)) * 4;
            int n = a.FirstColumn + c;
            var q = words[(((long)w * a.OutFeatures) + n) / 4];
            int group = w * rpw / a.GroupSize;
            uint zeros = a.QZeros[((long)group * (a.OutFeatures / rpw)) + (n / rpw)] >> (a.Bits * (n % rpw));
            ulong s = scales[(((long)group * a.OutFeatures) + n) / 4];
            uint z0 = (zeros & valueMask) + (uint)a.ZeroOffset;
            uint z1 = ((zeros >> a.Bits) & valueMask) + (uint)a.ZeroOffset;
            uint z2 = ((zeros >> (2 * a.Bits)) & valueMask) + (uint)a.ZeroOffset;
            uint z3 = ((zeros >> (3 * a.Bits)) & valueMask) + (uint)a.ZeroOffset;
            uint s0 = (uint)s & 0xFFFFu;
            uint s1 = (uint)(s >> 16) & 0xFFFFu;
            uint s2 = (uint)(s >> 32) & 0xFFFFu;
            uint s3 = (uint)(s >> 48);
            long row = (long)w * rpw;
            for (int p = 0; p < pairsPerWord; p++)
            {
                int shift = a.Bits * p;
                uint p0 = Pair(q.X >> shift, mask, z0, s0);
                uint p1 = Pair(q.Y >> shift, mask, z1, s1);
                uint p2 = Pair(q.Z >> shift, mask, z2, s2);
                uint p3 = Pair(q.W >> shift, mask, z3, s3);

                // Row 2p holds the low halves of the four columns' pairs, row 2p + 1 the high halves.
                ulong low = (p0 & 0xFFFFu) | (p1 << 16) | ((ulong)((p2 & 0xFFFFu) | (p3 << 16)) << 32);
                ulong high = (p0 >> 16) | (p1 & 0xFFFF0000u) | ((ulong)((p2 >> 16) | (p3 & 0xFFFF0000u)) << 32);
                long at = (((row + (2 * p)) * a.Columns) + c) / 4;
                a.Output[at] = low;
                a.Output[at + (a.Columns / 4)] = high;
            }
        }
    }

    /// <summary>half2 ((q_lo - zero) * scale, (q_hi - zero) * scale) of the two values <paramref name="mask"/> selects, each rounded to fp16 once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Pair(uint shifted, uint mask, uint zero, uint scale)
    {
        if (CudaAsm.IsSupported)
        {
            // 0x6400 + zero is fp16 1024 + zero (exact below 1024); both halves of each operand alike.
            uint offset = (0x6400u + zero) * 0x00010001u;
            CudaAsm.Emit(
                "{ .reg .b32 t, g; mov.b32 g, 0x64006400; lop3.b32 t, %1, %2, g, 0xEA; sub.f16x2 t, t, %3; mul.f16x2 %0, t, %4; }",
                out uint pair,
                shifted,
                mask,
                offset,
                scale * 0x00010001u);
            return pair;
        }

        float s = DeviceMath.HalfBitsToFloat(scale);
        uint low = DeviceMath.FloatToHalfBits(((float)(shifted & mask & 0xFFFFu) - zero) * s);
        uint high = DeviceMath.FloatToHalfBits(((float)((shifted & mask) >> 16) - zero) * s);
        return low | (high << 16);
    }
}
