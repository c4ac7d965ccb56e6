// GPTQ matrix-vector kernels (4-bit and 8-bit, any group size that is a multiple of four packed words):
// one pass over the packed weights per input row, memory-bound at batch 1. Also the fp16 dense GEMV used
// for lm_head and unquantized checkpoints.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="GptqGemvKernels.Gemv"/>.</summary>
internal struct GptqGemvArgs
{
    /// <summary>[in / rpw, out] packed words, rows sorted by group (act-order resolved at load time).</summary>
    public ArrayView<uint> QWeight;

    /// <summary>[groups, out / rpw] packed zeros, same bit order as qweight columns.</summary>
    public ArrayView<uint> QZeros;

    /// <summary>[groups, out] fp16 bit patterns.</summary>
    public ArrayView<ushort> Scales;

    /// <summary>[out] fp16 bias, or a dummy when <see cref="HasBias"/> is 0.</summary>
    public ArrayView<ushort> Bias;

    /// <summary>[rows, in / 2] half2 words in the GPTQ activation layout (<see cref="ActivationLayout"/>); in precise mode [rows, in] fp32 at the same slots.</summary>
    public ArrayView<uint> Input;

    /// <summary>[rows, OutputStride] fp32; columns OutputOffset .. OutputOffset + out are written.</summary>
    public ArrayView<float> Output;

    public int InFeatures;
    public int OutFeatures;
    public int Bits;
    public int GroupSize;

    /// <summary>1 for GPTQ v1 checkpoints (stored zero + 1), 0 for v2.</summary>
    public int ZeroOffset;
    public int HasBias;

    /// <summary>Non-zero: output += result (fuses the residual add). Zero: output = result.</summary>
    public int Accumulate;
    public int OutputStride;
    public int OutputOffset;
    public int ColumnsPerBlock;

    /// <summary>Input rows in this launch.</summary>
    public int Rows;

    /// <summary>Non-zero: products accumulate in fp32 (precise); zero: in fp16 pairs per packed word (fast).</summary>
    public int Precise;
}

/// <summary>Four fp32 partial sums, one per output column a thread owns.</summary>
internal struct Acc4
{
    public float A;
    public float B;
    public float C;
    public float D;
}

/// <summary>
/// GPTQ GEMV. Launch geometry: grid (rows * ceil(out / ColumnsPerBlock)), group <see cref="BlockThreads"/> threads;
/// block b serves row b % rows and column tile b / rows, so with several rows (prefill) the blocks that
/// share a weight tile run back to back and all but the first read it from L2.
/// ColumnsPerBlock is 16 or 32: a thread owns 4 adjacent output columns (one 16-byte load per packed word
/// row), ColumnsPerBlock / 4 threads span the columns and the remaining threads split the packed rows
/// (K) into contiguous ranges of whole 4-word chunks, then reduce through shared memory (no atomics).
/// Bit layout read: qweight word [w, n] holds inputs w*rpw .. w*rpw + rpw - 1 of column n, low bits first,
/// rpw = 32 / bits; zero of group g, column n sits in qzeros[g, n / rpw] at bit bits * (n % rpw).
/// On CUDA two values are dequantized per instruction: (word &gt;&gt; bits*j) &amp; 0x000F000F (or 0x00FF00FF) | 0x64006400
/// is the half2 (1024 + q_j, 1024 + q_{j+rpw/2}); adding -(1024 + zero) gives q - zero exactly, and one
/// fma.f16x2 multiplies it with the matching activation pair (fast mode; the precise mode converts q - zero
/// to fp32 and accumulates in fp32). Group sums are fp32 and scaled once per group.
/// </summary>
internal static class GptqGemvKernels
{
    public const int BlockThreads = 256;

    private const uint Magic = 0x64006400u;

    public static void Gemv(GptqGemvArgs a)
    {
        int colsPerBlock = a.ColumnsPerBlock;
        int colThreads = colsPerBlock / 4;
        int kThreads = BlockThreads / colThreads;
        int tid = Group.IdxX;
        int ct = tid % colThreads;
        int kt = tid / colThreads;
        int row = Grid.IdxX % a.Rows;
        int tile = Grid.IdxX / a.Rows;
        int col0 = (tile * colsPerBlock) + (ct * 4);
        int bits = a.Bits;
        int rowsPerWord = 32 / bits;
        int pairs = rowsPerWord / 2;
        int words = a.InFeatures / rowsPerWord;
        int wordsPerGroup = a.GroupSize / rowsPerWord;
        int chunks = words / 4;
        int chunksPerThread = (chunks + kThreads - 1) / kThreads;
        int w0 = kt * chunksPerThread * 4;
        int w1 = XMin(words, w0 + (chunksPerThread * 4));
        long inputBase = (long)row * (a.InFeatures / 2);
        uint mask = bits == 4 ? 0x000F000Fu : 0x00FF00FFu;

        var total = default(Acc4);
        if (col0 < a.OutFeatures)
        {
            for (int w = w0; w < w1; w += 4)
            {
                // Chunks never straddle a group: GroupSize is a multiple of 4 packed words (checked on the host).
                int g = w / wordsPerGroup;
                var zeros = LoadZeros(a, g, col0, bits, rowsPerWord);
                var part = default(Acc4);

                // Four independent 16-byte loads issued before any use, so each thread keeps 64 bytes in flight.
                long at = ((long)w * a.OutFeatures) + col0;
                var q0 = DeviceMath.Load4(a.QWeight, at);
                var q1 = DeviceMath.Load4(a.QWeight, at + a.OutFeatures);
                var q2 = DeviceMath.Load4(a.QWeight, at + (2L * a.OutFeatures));
                var q3 = DeviceMath.Load4(a.QWeight, at + (3L * a.OutFeatures));
                long xAt = inputBase + ((long)w * pairs);
                part = AddWord(part, q0, zeros, a.Input, xAt, bits, pairs, mask, a.Precise);
                part = AddWord(part, q1, zeros, a.Input, xAt + pairs, bits, pairs, mask, a.Precise);
                part = AddWord(part, q2, zeros, a.Input, xAt + (2 * pairs), bits, pairs, mask, a.Precise);
                part = AddWord(part, q3, zeros, a.Input, xAt + (3 * pairs), bits, pairs, mask, a.Precise);

                long sAt = ((long)g * a.OutFeatures) + col0;
                total.A += part.A * DeviceMath.HalfBitsToFloat(a.Scales[sAt]);
                total.B += part.B * DeviceMath.HalfBitsToFloat(a.Scales[sAt + 1]);
                total.C += part.C * DeviceMath.HalfBitsToFloat(a.Scales[sAt + 2]);
                total.D += part.D * DeviceMath.HalfBitsToFloat(a.Scales[sAt + 3]);
            }
        }

        var shared = SharedMemory.Allocate<float>(1024);
        int slot = (kt * colsPerBlock) + (ct * 4);
        shared[slot] = total.A;
        shared[slot + 1] = total.B;
        shared[slot + 2] = total.C;
        shared[slot + 3] = total.D;
        Group.Barrier();
        if (tid < colsPerBlock)
        {
            int col = (tile * colsPerBlock) + tid;
            if (col < a.OutFeatures)
            {
                float sum = 0f;
                for (int k = 0; k < kThreads; k++)
                {
                    sum += shared[(k * colsPerBlock) + tid];
                }

                StoreOutput(a, row, col, sum);
            }
        }
    }

    /// <summary>Adds the bias (if any) to one finished output and writes it, or adds it to what is there (fused residual).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreOutput(GptqGemvArgs a, int row, int col, float sum)
    {
        if (a.HasBias != 0)
        {
            sum += DeviceMath.HalfBitsToFloat(a.Bias[col]);
        }

        long o = ((long)row * a.OutputStride) + a.OutputOffset + col;
        a.Output[o] = a.Accumulate != 0 ? a.Output[o] + sum : sum;
    }

    /// <summary>Zeros of the 4 columns as raw integers (host checks out % rpw == 0, so one packed word holds them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 LoadZeros(GptqGemvArgs a, int g, int col0, int bits, int rowsPerWord)
    {
        uint word = a.QZeros[((long)g * (a.OutFeatures / rowsPerWord)) + (col0 / rowsPerWord)];
        int shift = bits * (col0 % rowsPerWord);
        uint zmask = (1u << bits) - 1u;
        uint off = (uint)a.ZeroOffset;
        var z = default(Words4);
        z.X = ((word >> shift) & zmask) + off;
        z.Y = ((word >> (shift + bits)) & zmask) + off;
        z.Z = ((word >> (shift + (2 * bits))) & zmask) + off;
        z.W = ((word >> (shift + (3 * bits))) & zmask) + off;
        return z;
    }

    /// <summary>Adds (q - zero) . x over the rpw inputs of one packed word row, for the 4 columns in <paramref name="q"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 AddWord(Acc4 acc, Words4 q, Words4 zeros, ArrayView<uint> input, long xAt, int bits, int pairs, uint mask, int precise)
    {
        if (CudaAsm.IsSupported && precise != 0 && pairs == 4)
        {
            // 4-bit: the word's 8 fp32 activations are two 16-byte loads instead of eight 4-byte ones.
            uint nzA = NegZeroPair(zeros.X);
            uint nzB = NegZeroPair(zeros.Y);
            uint nzC = NegZeroPair(zeros.Z);
            uint nzD = NegZeroPair(zeros.W);
            var x01 = DeviceMath.Load4(input, 2 * xAt);
            var x23 = DeviceMath.Load4(input, (2 * xAt) + 4);
            acc = AddPair(acc, q, nzA, nzB, nzC, nzD, 0, mask, Interop.IntAsFloat(x01.X), Interop.IntAsFloat(x01.Y));
            acc = AddPair(acc, q, nzA, nzB, nzC, nzD, 4, mask, Interop.IntAsFloat(x01.Z), Interop.IntAsFloat(x01.W));
            acc = AddPair(acc, q, nzA, nzB, nzC, nzD, 8, mask, Interop.IntAsFloat(x23.X), Interop.IntAsFloat(x23.Y));
            return AddPair(acc, q, nzA, nzB, nzC, nzD, 12, mask, Interop.IntAsFloat(x23.Z), Interop.IntAsFloat(x23.W));
        }

        if (CudaAsm.IsSupported && precise != 0)
        {
            uint nzA = NegZeroPair(zeros.X);
            uint nzB = NegZeroPair(zeros.Y);
            uint nzC = NegZeroPair(zeros.Z);
            uint nzD = NegZeroPair(zeros.W);
            for (int j = 0; j < pairs; j++)
            {
                // Precise mode: the producer wrote fp32 activations into the same slots (two words per pair).
                float lo = Interop.IntAsFloat(input[2 * (xAt + j)]);
                float hi = Interop.IntAsFloat(input[(2 * (xAt + j)) + 1]);
                int s = bits * j;
                acc.A = DeviceMath.Half2SubDot(((q.X >> s) & mask) | Magic, nzA, lo, hi, acc.A);
                acc.B = DeviceMath.Half2SubDot(((q.Y >> s) & mask) | Magic, nzB, lo, hi, acc.B);
                acc.C = DeviceMath.Half2SubDot(((q.Z >> s) & mask) | Magic, nzC, lo, hi, acc.C);
                acc.D = DeviceMath.Half2SubDot(((q.W >> s) & mask) | Magic, nzD, lo, hi, acc.D);
            }

            return acc;
        }

        if (CudaAsm.IsSupported)
        {
            uint nzA = NegZeroPair(zeros.X);
            uint nzB = NegZeroPair(zeros.Y);
            uint nzC = NegZeroPair(zeros.Z);
            uint nzD = NegZeroPair(zeros.W);
            uint hA = 0;
            uint hB = 0;
            uint hC = 0;
            uint hD = 0;
            for (int j = 0; j < pairs; j++)
            {
                uint x = input[xAt + j];
                int s = bits * j;
                hA = DeviceMath.Half2SubFma(((q.X >> s) & mask) | Magic, nzA, x, hA);
                hB = DeviceMath.Half2SubFma(((q.Y >> s) & mask) | Magic, nzB, x, hB);
                hC = DeviceMath.Half2SubFma(((q.Z >> s) & mask) | Magic, nzC, x, hC);
                hD = DeviceMath.Half2SubFma(((q.W >> s) & mask) | Magic, nzD, x, hD);
            }

            acc.A += DeviceMath.Half2Sum(hA);
            acc.B += DeviceMath.Half2Sum(hB);
            acc.C += DeviceMath.Half2Sum(hC);
            acc.D += DeviceMath.Half2Sum(hD);
            return acc;
        }

        uint vmask = (1u << bits) - 1u;
        for (int j = 0; j < pairs; j++)
        {
            float lo;
            float hi;
            if (precise != 0)
            {
                lo = Interop.IntAsFloat(input[2 * (xAt + j)]);
                hi = Interop.IntAsFloat(input[(2 * (xAt + j)) + 1]);
            }
            else
            {
                uint x = input[xAt + j];
                lo = DeviceMath.Low(x);
                hi = DeviceMath.High(x);
            }

            int sLo = bits * j;
            int sHi = bits * (j + pairs);
            acc.A += (((int)((q.X >> sLo) & vmask) - (int)zeros.X) * lo) + (((int)((q.X >> sHi) & vmask) - (int)zeros.X) * hi);
            acc.B += (((int)((q.Y >> sLo) & vmask) - (int)zeros.Y) * lo) + (((int)((q.Y >> sHi) & vmask) - (int)zeros.Y) * hi);
            acc.C += (((int)((q.Z >> sLo) & vmask) - (int)zeros.Z) * lo) + (((int)((q.Z >> sHi) & vmask) - (int)zeros.Z) * hi);
            acc.D += (((int)((q.W >> sLo) & vmask) - (int)zeros.W) * lo) + (((int)((q.W >> sHi) & vmask) - (int)zeros.W) * hi);
        }

        return acc;
    }

    /// <summary>One half2 pair (shift <paramref name="s"/>) of the 4 columns, accumulated in fp32 (CUDA, precise mode).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 AddPair(Acc4 acc, Words4 q, uint nzA, uint nzB, uint nzC, uint nzD, int s, uint mask, float lo, float hi)
    {
        acc.A = DeviceMath.Half2SubDot(((q.X >> s) & mask) | Magic, nzA, lo, hi, acc.A);
        acc.B = DeviceMath.Half2SubDot(((q.Y >> s) & mask) | Magic, nzB, lo, hi, acc.B);
        acc.C = DeviceMath.Half2SubDot(((q.Z >> s) & mask) | Magic, nzC, lo, hi, acc.C);
        acc.D = DeviceMath.Half2SubDot(((q.W >> s) & mask) | Magic, nzD, lo, hi, acc.D);
        return acc;
    }

    /// <summary>-(1024 + zero) as fp16 in both lanes; exact for zero &lt;= 1024.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint NegZeroPair(uint zero)
    {
        // 1024 + z has exponent 10 (0x6400 = 1024.0) and mantissa z for z < 1024, so the bits are 0x6400 + z.
        uint h = 0x8000u | (0x6400u + zero);
        return h | (h << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int XMin(int a, int b) => a < b ? a : b;
}

/// <summary>Arguments of <see cref="DenseGemvKernels.Gemv"/>.</summary>
internal struct DenseGemvArgs
{
    /// <summary>[out, in] fp16 weights as half2 words ([out, in / 2]).</summary>
    public ArrayView<uint> Weight;

    /// <summary>[rows, in / 2] half2 words, natural order.</summary>
    public ArrayView<uint> Input;

    /// <summary>[rows, OutputStride] fp32.</summary>
    public ArrayView<float> Output;

    /// <summary>[out] fp16 bias or dummy.</summary>
    public ArrayView<ushort> Bias;
    public int InFeatures;
    public int OutFeatures;
    public int HasBias;
    public int Accumulate;
    public int OutputStride;
    public int OutputOffset;
}

/// <summary>
/// fp16 dense GEMV (lm_head, unquantized projections). Launch geometry: grid (ceil(out / 8), rows), group
/// 256 threads = 8 warps, one warp per output row; each lane reads 16 bytes (8 fp16 weights) per step along
/// the input, products are converted to and accumulated in fp32, then a warp shuffle reduce.
/// Reads weight [out, in] row-major (the HF layout), so consecutive lanes read consecutive 16-byte chunks.
/// Requires in % 8 == 0.
/// </summary>
internal static class DenseGemvKernels
{
    public const int BlockThreads = 256;
    public const int RowsPerBlock = 8;

    public static void Gemv(DenseGemvArgs a)
    {
        int warp = Group.IdxX / 32;
        int lane = Group.IdxX % 32;
        int n = (Grid.IdxX * RowsPerBlock) + warp;
        int row = Grid.IdxY;
        int chunks = a.InFeatures / 8;
        float acc = 0f;
        if (n < a.OutFeatures)
        {
            long wBase = (long)n * (a.InFeatures / 2);
            long xBase = (long)row * (a.InFeatures / 2);
            for (int c = lane; c < chunks; c += 32)
            {
                var w = DeviceMath.Load4(a.Weight, wBase + (c * 4));
                var x = DeviceMath.Load4(a.Input, xBase + (c * 4));
                if (CudaAsm.IsSupported)
                {
                    acc = DeviceMath.Half2Dot(w.X, x.X, acc);
                    acc = DeviceMath.Half2Dot(w.Y, x.Y, acc);
                    acc = DeviceMath.Half2Dot(w.Z, x.Z, acc);
                    acc = DeviceMath.Half2Dot(w.W, x.W, acc);
                }
                else
                {
                    acc += (DeviceMath.Low(w.X) * DeviceMath.Low(x.X)) + (DeviceMath.High(w.X) * DeviceMath.High(x.X))
                        + (DeviceMath.Low(w.Y) * DeviceMath.Low(x.Y)) + (DeviceMath.High(w.Y) * DeviceMath.High(x.Y))
                        + (DeviceMath.Low(w.Z) * DeviceMath.Low(x.Z)) + (DeviceMath.High(w.Z) * DeviceMath.High(x.Z))
                        + (DeviceMath.Low(w.W) * DeviceMath.Low(x.W)) + (DeviceMath.High(w.W) * DeviceMath.High(x.W));
                }
            }
        }

        for (int offset = 16; offset > 0; offset /= 2)
        {
            acc += Warp.ShuffleDown(acc, offset);
        }

        if (lane == 0 && n < a.OutFeatures)
        {
            if (a.HasBias != 0)
            {
                acc += DeviceMath.HalfBitsToFloat(a.Bias[n]);
            }

            long o = ((long)row * a.OutputStride) + a.OutputOffset + n;
            a.Output[o] = a.Accumulate != 0 ? a.Output[o] + acc : acc;
        }
    }
}
