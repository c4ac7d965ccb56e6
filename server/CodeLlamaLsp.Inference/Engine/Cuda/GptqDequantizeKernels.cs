// GPTQ weights dequantized to fp16 for a library GEMM (cuBLAS in prefill, as ExLlamaV2 and llama.cpp do): a slice of a
// layer's columns becomes a row-major fp16 matrix [columns, in] whose inputs follow the activation layout's storage
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

    /// <summary>[Columns, in / 2] half2 words: column FirstColumn + c's inputs in the activation layout's storage order.</summary>
    public ArrayView<uint> Output;

    public int InFeatures;
    public int OutFeatures;
    public int Bits;
    public int GroupSize;

    /// <summary>1 for GPTQ v1 checkpoints (stored zero + 1), 0 for v2.</summary>
    public int ZeroOffset;

    /// <summary>First column of the slice.</summary>
    public int FirstColumn;

    /// <summary>Columns in the slice.</summary>
    public int Columns;
}

/// <summary>
/// A block takes tiles of <see cref="TileWordRows"/> packed word rows x <see cref="TileColumns"/> columns in turn
/// (grid-stride) and transposes each through shared memory: the loads run along a word row (neighbouring threads on
/// neighbouring columns, 256-byte runs) and the stores along a column's inputs (a warp writes 32 consecutive words'
/// inputs of one column: 512 contiguous bytes at 4 bits). Writing a column's inputs straight from the thread that
/// loaded them put each lane's stores 16 KB apart and ran at 0.46 TB/s (H200, 11-30). The packed word's storage order
/// is the half2 order the magic-number trick produces: (word &gt;&gt; bits*i) &amp; 0x000F000F (0x00FF00FF at 8 bits)
/// | 0x6400 is fp16 (1024 + q_i, 1024 + q_{i + rpw/2}), exactly the pair the activation layout stores at position i of
/// the word (<see cref="ActivationLayout"/>). Subtracting 1024 + zero is exact and the product with the scale rounds
/// once, as in the built-in GEMM, so both paths multiply the same fp16 weights.
/// </summary>
internal static class GptqDequantizeKernels
{
    public const int BlockThreads = 256;

    /// <summary>Packed word rows per tile: one per lane of the warp that stores a column.</summary>
    public const int TileWordRows = 32;

    /// <summary>Columns per tile: 8 per warp.</summary>
    public const int TileColumns = 64;

    /// <summary>Shared-memory row pitch in words: one past the tile's width, so a warp reading a column hits 32 banks.</summary>
    private const int Pitch = TileColumns + 1;

    /// <summary>Whether a layer can be dequantized here (and so multiplied by cuBLAS).</summary>
    public static bool Supports(int bits, int inFeatures, int groupSize) =>
        (bits == 4 || bits == 8) && inFeatures % (32 / bits) == 0 && groupSize % (32 / bits) == 0;

    /// <summary>Tiles of a slice of <paramref name="columns"/> columns of a layer with <paramref name="inFeatures"/> inputs.</summary>
    public static int Tiles(int bits, int inFeatures, int columns) =>
        ((columns + TileColumns - 1) / TileColumns) * ((inFeatures / (32 / bits) + TileWordRows - 1) / TileWordRows);

    public static void ToHalf(DequantizeArgs a)
    {
        var tile = SharedMemory.Allocate<uint>(TileWordRows * Pitch);
        int rpw = 32 / a.Bits;
        int wordRows = a.InFeatures / rpw;
        int columnTiles = (a.Columns + TileColumns - 1) / TileColumns;
        int tiles = columnTiles * ((wordRows + TileWordRows - 1) / TileWordRows);
        int tid = Group.IdxX;
        int warp = tid / 32;
        int lane = tid % 32;
        var output = a.Output.Cast<Words4>();
        var pairs = a.Output;
        for (int t = Grid.IdxX; t < tiles; t += Grid.DimX)
        {
            int firstRow = t / columnTiles * TileWordRows;
            int firstColumn = (t % columnTiles) * TileColumns;

            // Loads: thread tid takes column tid % 64 of word rows tid / 64, + 4, + 8, ...
            int c = tid % TileColumns;
            for (int r = tid / TileColumns; r < TileWordRows; r += BlockThreads / TileColumns)
            {
                if (firstRow + r < wordRows && firstColumn + c < a.Columns)
                {
                    tile[(r * Pitch) + c] = a.QWeight[((long)(firstRow + r) * a.OutFeatures) + a.FirstColumn + firstColumn + c];
                }
            }

            Group.Barrier();

            // Stores: warp w writes columns 8w .. 8w + 7, lane l the inputs of word row l.
            int row = firstRow + lane;
            if (row < wordRows)
            {
                int group = row * rpw / a.GroupSize;
                for (int k = 0; k < TileColumns / (BlockThreads / 32); k++)
                {
                    int column = firstColumn + (warp * (TileColumns / (BlockThreads / 32))) + k;
                    if (column < a.Columns)
                    {
                        int n = a.FirstColumn + column;
                        uint zeros = a.QZeros[((long)group * (a.OutFeatures / rpw)) + (n / rpw)];
                        uint zero = ((zeros >> (a.Bits * (n % rpw))) & ((1u << a.Bits) - 1u)) + (uint)a.ZeroOffset;
                        uint scale = a.Scales[((long)group * a.OutFeatures) + n];
                        uint word = tile[(lane * Pitch) + column - firstColumn];
                        long at = ((long)column * a.InFeatures) + ((long)row * rpw); // in fp16 elements
                        if (a.Bits == 4)
                        {
                            output[at / 8] = Word4Bit(word, zero, scale);
                        }
                        else
                        {
                            pairs[at / 2] = Pair(word, 0x00FF00FFu, zero, scale);
                            pairs[(at / 2) + 1] = Pair(word >> 8, 0x00FF00FFu, zero, scale);
                        }
                    }
                }
            }

            Group.Barrier();
        }
    }

    /// <summary>A 4-bit word's 8 inputs, in storage order, as four half2 words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 Word4Bit(uint q, uint zero, uint scale) => new()
    {
        X = Pair(q, 0x000F000Fu, zero, scale),
        Y = Pair(q >> 4, 0x000F000Fu, zero, scale),
        Z = Pair(q >> 8, 0x000F000Fu, zero, scale),
        W = Pair(q >> 12, 0x000F000Fu, zero, scale),
    };

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
