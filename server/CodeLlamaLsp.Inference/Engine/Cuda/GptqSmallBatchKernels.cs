// GPTQ kernel for 1 to 16 input rows (decode, speculative verification, a keystroke's changed tail): the packed
// weights stream through a per-warp cp.async ring, each weight is dequantized once into tensor-core A fragments
// and multiplied with all rows at once by mma.sync, so 16 rows cost about what one does. The layer is split evenly
// over every block the GPU holds at once (stream-K, as Marlin does), and partial sums are added in a fixed order,
// so a row's result is the same bits alone or in a batch.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// Arguments of <see cref="GptqSmallBatchKernels.Run"/>: the linear layer's launch arguments (the GEMV's and GEMM's, with
/// the device addresses of the weights and the input) plus the further addresses cp.async reads and the stream-K scratch.
/// </summary>
internal struct SmallBatchArgs
{
    /// <summary>The layer, its input and output; <see cref="GptqGemvArgs.Rows"/> is 1 to <see cref="GptqSmallBatchKernels.MaxRows"/>.</summary>
    public GptqGemvArgs Layer;

    /// <summary>Device address of the layer's packed zeros, [groups, out / 8].</summary>
    public long QZerosAddress;

    /// <summary>Device address of the layer's fp16 scales, [groups, out].</summary>
    public long ScalesAddress;

    /// <summary>Device address of <see cref="Partials"/> (read past L1: other multiprocessors wrote it).</summary>
    public long PartialsAddress;

    /// <summary>Stream-K partial sums: [slot][16 rows][64 columns] fp32 (see <see cref="GptqSmallBatchKernels"/>).</summary>
    public ArrayView<float> Partials;

    /// <summary>[column blocks] arrivals per column block; every launch leaves them at zero.</summary>
    public ArrayView<int> Arrivals;

    /// <summary>Blocks in the launch: the stream-K split depends on it and on the layer, never on the row count.</summary>
    public int Blocks;

    /// <summary>Units of K (32 inputs each, two mma k16 steps): InFeatures / 32.</summary>
    public int KUnits;

    /// <summary>Units per quantization group: GroupSize / 32.</summary>
    public int GroupUnits;
}

/// <summary>
/// GPTQ 4-bit matrix product for 1 to 16 rows. Launch geometry: <see cref="SmallBatchArgs.Blocks"/> blocks of
/// <see cref="BlockThreads"/>, as many as the GPU holds at once.
/// <para>
/// <b>Work split.</b> The output columns form column blocks of 64 (four 16-column mma tiles); a column block's K is
/// units of 32 inputs (two mma k16 steps), so the layer is (column blocks x K units) units, taken in column-block-major
/// order and cut into equal contiguous ranges, one per thread block (stream-K). Within a range the four warps take
/// chunks of <see cref="ChunkSize"/> units in turn (warp w the chunks equal to w modulo 4), so they stream neighbouring
/// weights, load a quantization group's constants once per chunk, and finish a column block together. At the end of
/// each column block in the range (a segment) the warps put their sums into a shared reduction tile, add the four in
/// warp order and, unless the range holds the whole column block, store the result in the range's scratch slot
/// (slot = block index + column block, unique because ranges are in order). The thread block whose arrival completes a
/// column block (an atomic count; the number of contributors follows from the split) adds the slots in order, then the
/// bias and the residual, and writes the output. No float atomics, so the result does not depend on timing, and
/// nothing in it depends on the row count.
/// </para>
/// <para>
/// <b>The mma with swapped operands.</b> mma.m16n8k16 multiplies A (16 x 16) by B (16 x 8). Weights are the A operand
/// (16 output columns of a tile x 16 inputs) and the activations B (16 inputs x 8 rows; rows 8-15 a second mma on the
/// same A), so one dequantized weight feeds up to 16 rows and a single row wastes only tensor-core slots, which are
/// plentiful. Lane (g = lane / 4, t = lane % 4) holds A rows g and g + 8 (columns 16 i + g and 16 i + g + 8 of tile i)
/// at k = 2t, 2t + 1, 2t + 8, 2t + 9, and B column g (row g) at the same k. The k order inside an mma is free as long as A
/// and B agree, so k is taken in the activation layout's storage order: mma k = 2t + 8h + e is the half at storage
/// position 16 j + 4 t + 2 h + e of step j. Those four halves are the 8-byte chunk t of the row's 32-byte step, and they
/// come from packed word row 2 j + t / 2 of each column, in its bytes 0 and 2 (t even) or 1 and 3 (t odd): shifted
/// down by 8 (t % 2) bits, lop3 with 0x000F000F gives the half2 (1024 + q) of (h = 0, e = 0, 1) and with 0x00F000F0 the
/// half2 (1024 + 16 q) of h = 1. So the checkpoint's own layout is read; nothing is repacked and nothing is stored twice.
/// Dequantization is the GEMM's, (q - zero) * scale rounded to fp16 (add.f16x2 of -(1024 + zero), or fma.f16x2 by 1/16
/// and -(64 + zero), both exact, then mul.f16x2), with fp32 accumulation in the mma.
/// </para>
/// <para>
/// <b>The ring.</b> Per unit a warp copies 1 KB of weights (per k16 step 2 word rows x 64 columns; lane L copies 16
/// bytes of row L / 16 of each step), 8 bytes of activations per lane, step and row (rows g and g + 8, zero-filled past
/// the batch), and at a new group the column block's 64 scales and zero nibbles. <see cref="Stages"/> - 1 units are in
/// flight per warp, with no registers held for them and no block-wide barrier: a warp only reads what its own lanes
/// copied (a warp barrier after the wait makes the other lanes' copies visible). Requirements (<see cref="Supports"/>):
/// 4 bits, out a multiple of 32 (16-byte copies of the zeros), in and the group size multiples of 32.
/// </para>
/// On ILGPU's CPU accelerator (tests) lane 0 of each warp computes its units with plain loops over the same
/// dequantization into the same reduction tile, and everything after that is the same code, so all but the inline
/// PTX runs in CI.
/// </summary>
internal static class GptqSmallBatchKernels
{
    public const int BlockThreads = 128;
    public const int WarpsPerBlock = BlockThreads / 32;
    public const int MaxRows = 16;

    /// <summary>Output columns per column block (four mma tiles).</summary>
    public const int BlockColumns = 64;

    /// <summary>
    /// Consecutive units a warp computes before the next warp's turn: 128 inputs, one group of the common g128, so a warp
    /// loads a group's constants once per chunk. (Interleaving single 16-input steps made every other step load them.)
    /// </summary>
    public const int ChunkSize = 4;

    /// <summary>Inputs per unit of work: two mma k16 steps.</summary>
    public const int UnitInputs = 32;

    /// <summary>Units in the ring per warp: two in flight while one is computed.</summary>
    private const int Stages = 3;

    /// <summary>Bytes from one packed word row to the next within a stage: 256 bytes of a row plus 64 of padding, so the two rows' words that a warp reads together sit in different banks.</summary>
    public const int RowPitch = 320;

    /// <summary>Byte offset of the activations within a stage (after 4 word rows: 2 per k16 step).</summary>
    public const int ActivationOffset = 4 * RowPitch;

    private const int ConstantsOffset = ActivationOffset + (2 * 512);

    /// <summary>One stage of a warp (a unit): weights (2 steps x 2 word rows x 320), activations (2 steps x 32 lanes x 16), scales (128) and zeros (32).</summary>
    private const int StageBytes = ConstantsOffset + 160;

    private const int WarpBytes = Stages * StageBytes;

    /// <summary>Floats of one warp's area in the reduction tile (and of one scratch slot): 16 rows x 64 columns.</summary>
    private const int TileFloats = MaxRows * BlockColumns;

    /// <summary>The reduction tile, [warp][row][column] fp32, after the four rings.</summary>
    private const int ReduceOffset = WarpsPerBlock * WarpBytes;

    /// <summary>One int after the reduction tile: whether this block's arrival completed a column block.</summary>
    private const int LastFlagOffset = ReduceOffset + (WarpsPerBlock * TileFloats * 4);

    /// <summary>Bytes of the one static shared allocation (44.9 KB of the 48 KB static limit).</summary>
    public const int SharedBytes = LastFlagOffset + 16;

    /// <summary>Bytes of one scratch slot: 16 rows x 64 columns of fp32.</summary>
    public const int SlotBytes = TileFloats * 4;

    /// <summary>Most blocks a launch may have (the split's arithmetic is 32-bit, see <see cref="MaxUnits"/>).</summary>
    public const int MaxBlocks = 4096;

    /// <summary>Units a layer may have: the split's products (units x blocks) stay within 32-bit integers.</summary>
    public const int MaxUnits = int.MaxValue / MaxBlocks;

    /// <summary>Whether a layer can run through this kernel (the host sends the rest to the GEMV).</summary>
    public static bool Supports(int bits, int inFeatures, int outFeatures, int groupSize) =>
        bits == 4 && outFeatures % 32 == 0 && inFeatures % UnitInputs == 0 && groupSize % UnitInputs == 0
        && (long)ColumnBlocks(outFeatures) * (inFeatures / UnitInputs) <= MaxUnits;

    /// <summary>Column blocks of a layer (the arrival counters it needs).</summary>
    public static int ColumnBlocks(int outFeatures) => (outFeatures + BlockColumns - 1) / BlockColumns;

    /// <summary>Scratch slots a launch may use: one per block plus one per column block (see the class remarks).</summary>
    public static long Slots(int blocks, int columnBlocks) => blocks + columnBlocks;

    /// <summary>One block's range of units: streamed and multiplied on CUDA, plain loops on the CPU accelerator, the segment ends shared.</summary>
    public static void Run(SmallBatchArgs a)
    {
        var shared = SharedMemory.Allocate<Words4>(SharedBytes / 16);
        int units = ColumnBlocks(a.Layer.OutFeatures) * a.KUnits;

        // Never more blocks than units, so every block's range holds at least one unit (the contributor count relies on it).
        int blocks = units < a.Blocks ? units : a.Blocks;
        int block = Grid.IdxX;
        if (block >= blocks)
        {
            return;
        }

        int first = RangeStart(block, units, blocks);
        int end = RangeStart(block + 1, units, blocks);
        int warp = Group.IdxX >> 5;
        int lane = Group.IdxX & 31;
        var reduce = shared.Cast<float>().SubView(ReduceOffset / 4, WarpsPerBlock * TileFloats);
        var lastFlag = shared.Cast<int>().SubView(LastFlagOffset / 4, 1);

        int own = FirstOwned(first, warp);
        if (CudaAsm.IsSupported)
        {
            StreamCuda(a, reduce, lastFlag, block, blocks, units, first, end, own, warp, lane);
            return;
        }

        for (int segment = first; segment < end;)
        {
            int column = segment / a.KUnits;
            int segmentEnd = XMin(end, (column + 1) * a.KUnits);
            if (lane == 0)
            {
                AddUnitsManaged(a, reduce.SubView(warp * TileFloats, TileFloats), column, warp, segment, segmentEnd);
            }

            FinishSegment(a, reduce, lastFlag, block, blocks, units, column);
            segment = segmentEnd;
        }
    }

    /// <summary>First unit of block <paramref name="block"/>'s range: the units split as evenly as integers allow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RangeStart(int block, int units, int blocks) => block * units / blocks;

    /// <summary>The block whose range holds unit <paramref name="unit"/> (the largest b with RangeStart(b) &lt;= unit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BlockOf(int unit, int units, int blocks) => (((unit + 1) * blocks) - 1) / units;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int XMin(int x, int y) => x < y ? x : y;

    /// <summary>Whether warp <paramref name="warp"/> computes unit <paramref name="unit"/>: the warps take chunks of <see cref="ChunkSize"/> units in turn.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Owns(int unit, int warp) => ((unit / ChunkSize) & (WarpsPerBlock - 1)) == warp;

    /// <summary>The first unit at or after <paramref name="unit"/> that warp <paramref name="warp"/> computes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int FirstOwned(int unit, int warp)
    {
        int chunk = unit / ChunkSize;
        int ahead = (warp - (chunk & (WarpsPerBlock - 1))) & (WarpsPerBlock - 1);
        return ahead == 0 ? unit : (chunk + ahead) * ChunkSize;
    }

    /// <summary>Units of [<paramref name="from"/>, <paramref name="to"/>) that warp <paramref name="warp"/> computes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int OwnedUnits(int warp, int from, int to) => OwnedBefore(warp, to) - OwnedBefore(warp, from);

    /// <summary>Units below <paramref name="unit"/> that warp <paramref name="warp"/> computes (whole rounds of 4 chunks, then part of one).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int OwnedBefore(int warp, int unit)
    {
        const int round = WarpsPerBlock * ChunkSize;
        int inRound = (unit & (round - 1)) - (warp * ChunkSize);
        return ((unit / round) * ChunkSize) + (inRound < 0 ? 0 : inRound > ChunkSize ? ChunkSize : inRound);
    }

    /// <summary>
    /// The range on CUDA as one flat loop (nested loops made ILGPU's code run the outer loop's header, a 64-bit division
    /// included, for every unit): each iteration either computes the warp's next unit or, when the warp has none left
    /// in the current column block, ends that segment with the other warps.
    /// </summary>
    private static void StreamCuda(SmallBatchArgs a, ArrayView<float> reduce, ArrayView<int> lastFlag, int block, int blocks, int units, int first, int end, int own, int warp, int lane)
    {
        int g = lane >> 2;
        int t = lane & 3;
        bool twoTiles = a.Layer.Rows > 8;
        uint smem = DeviceMath.SharedBase();
        uint ring = smem + (uint)(warp * WarpBytes);
        CudaAsm.Emit(DeclareRegisters);

        // The copy side runs Stages - 1 units ahead; it marks in groupSlots the ring slots whose unit needs its group's
        // constants loaded, so the compute side follows the ring without a cursor of its own.
        var load = CopyCursor.At(own, a, lane);
        int groupSlots = 0;
        for (int s = 0; s < Stages - 1; s++)
        {
            if (load.Unit < end)
            {
                Issue(a, load, ring + (uint)(s * StageBytes), lane, twoTiles);
                groupSlots |= load.NewGroup << s;
                load = load.Next(a);
            }

            DeviceMath.CommitCopies();
        }

        // -(1024 + zero) and -(64 + zero) in both fp16 lanes are z * 0x00010001 + k1024 and z * 0x00100010 + k64 (the
        // constants carry the sign, 1024.0 or 64.0 and the v1 zero offset; 16 z is z in 64.0's mantissa).
        uint offset = (uint)a.Layer.ZeroOffset;
        uint k1024 = 0xE400E400u + (offset * 0x00010001u);
        uint k64 = 0xD400D400u + (offset * 0x00100010u);
        uint shift = (uint)(8 * (t & 1));
        uint wordAt = (uint)(((t >> 1) * RowPitch) + (4 * g));
        uint activationAt = (uint)(ActivationOffset + (16 * lane));
        uint reduceAt = smem + (uint)(ReduceOffset + (warp * TileFloats * 4) + ((((2 * t) * BlockColumns) + g) * 4));
        int loadSlot = Stages - 1;
        int slot = 0;
        int column = first / a.KUnits;
        int segmentEnd = XMin(end, (column + 1) * a.KUnits);
        int remaining = OwnedUnits(warp, first, segmentEnd);
        while (true)
        {
            if (remaining > 0)
            {
                // This lane's copies of the unit have landed; the warp barrier makes the other lanes' visible and keeps
                // the slot refilled below (read in the previous iteration) from being overwritten under a slower lane.
                DeviceMath.WaitUntilOneCopyGroupPending(); // Stages - 2 may still fly
                Warp.Barrier();
                if (load.Unit < end)
                {
                    Issue(a, load, ring + (uint)(loadSlot * StageBytes), lane, twoTiles);
                    groupSlots = (groupSlots & ~(1 << loadSlot)) | (load.NewGroup << loadSlot);
                    load = load.Next(a);
                }

                DeviceMath.CommitCopies();
                loadSlot = loadSlot == Stages - 1 ? 0 : loadSlot + 1;

                uint stage = ring + (uint)(slot * StageBytes);
                if (((groupSlots >> slot) & 1) != 0)
                {
                    CudaAsm.Emit(SetGroup, stage + (uint)(ConstantsOffset + (2 * g)), stage + (uint)ConstantsOffset, (uint)(4 * g), k1024, k64);
                }

                // The unit's two k16 steps: word rows 0-1 and activations 0-511, then word rows 2-3 and 512-1023.
                CudaAsm.Emit(MmaLow, stage + wordAt, shift, stage + activationAt);
                if (twoTiles)
                {
                    CudaAsm.Emit(MmaHigh);
                }

                CudaAsm.Emit(MmaLow, stage + wordAt + (2 * RowPitch), shift, stage + activationAt + 512);
                if (twoTiles)
                {
                    CudaAsm.Emit(MmaHigh);
                }

                slot = slot == Stages - 1 ? 0 : slot + 1;
                remaining--;
            }
            else
            {
                CudaAsm.Emit(StoreLow, reduceAt, a.Layer.Rows, 2 * t);
                if (twoTiles)
                {
                    CudaAsm.Emit(StoreHigh, reduceAt + (8 * BlockColumns * 4), a.Layer.Rows, (2 * t) + 8);
                }

                FinishSegment(a, reduce, lastFlag, block, blocks, units, column);
                if (segmentEnd >= end)
                {
                    break;
                }

                int segment = segmentEnd;
                column++;
                segmentEnd = XMin(end, segment + a.KUnits);
                remaining = OwnedUnits(warp, segment, segmentEnd);
            }
        }

        DeviceMath.WaitForAllCopies();
    }

    /// <summary>
    /// After the warps of a block put their sums of column block <paramref name="column"/> into the reduction tile: adds
    /// the four in warp order and writes the output if this block's range holds the whole column block; else stores the
    /// sums in the block's scratch slot and, if its arrival completes the column block, adds every contributor's slot in
    /// block order and writes the output.
    /// </summary>
    private static void FinishSegment(SmallBatchArgs a, ArrayView<float> reduce, ArrayView<int> lastFlag, int block, int blocks, int units, int column)
    {
        Group.Barrier();
        int firstBlock = BlockOf(column * a.KUnits, units, blocks);
        int count = BlockOf(((column + 1) * a.KUnits) - 1, units, blocks) - firstBlock + 1;
        int elements = a.Layer.Rows * BlockColumns;
        long slot = (long)(block + column) * TileFloats;
        for (int e = Group.IdxX; e < elements; e += BlockThreads)
        {
            float sum = reduce[e] + reduce[TileFloats + e] + reduce[(2 * TileFloats) + e] + reduce[(3 * TileFloats) + e];
            if (count == 1)
            {
                WriteOutput(a, column, e, sum);
            }
            else
            {
                a.Partials[slot + e] = sum;
            }
        }

        if (count > 1)
        {
            // Every thread's stores are visible device-wide before thread 0 counts the block in.
            MemoryFence.DeviceLevel();
            Group.Barrier();
            if (Group.IdxX == 0)
            {
                int last = Atomic.Add(ref a.Arrivals[column], 1) == count - 1 ? 1 : 0;
                if (last != 0)
                {
                    a.Arrivals[column] = 0;
                }

                lastFlag[0] = last;
            }

            Group.Barrier();
            if (lastFlag[0] != 0)
            {
                MemoryFence.DeviceLevel();
                long firstSlot = (long)(firstBlock + column) * TileFloats;
                for (int e = Group.IdxX; e < elements; e += BlockThreads)
                {
                    float sum = 0f;
                    for (int c = 0; c < count; c++)
                    {
                        sum += LoadPartial(a, firstSlot + ((long)c * TileFloats) + e);
                    }

                    WriteOutput(a, column, e, sum);
                }
            }
        }

        // The tile and the flag are reused by the next segment.
        Group.Barrier();
    }

    /// <summary>Element e (row e / 64, column e % 64) of column block <paramref name="column"/>, with bias and residual as the GEMV writes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteOutput(SmallBatchArgs a, int column, int e, float sum)
    {
        int col = (column * BlockColumns) + (e & (BlockColumns - 1));
        if (col < a.Layer.OutFeatures)
        {
            GptqGemvKernels.StoreOutput(a.Layer, e / BlockColumns, col, sum);
        }
    }

    /// <summary>One partial sum, read from L2 on CUDA (another multiprocessor wrote it; L1 is not coherent).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadPartial(SmallBatchArgs a, long index)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("ld.global.cg.f32 %0, [%1];", out float value, a.PartialsAddress + (index * 4));
            return value;
        }

        return a.Partials[index];
    }

    /// <summary>Issues a unit's copies into the stage at <paramref name="stage"/>: weights, activations and, when the unit starts a new group for the warp, the group's scales and zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Issue(SmallBatchArgs a, CopyCursor c, uint stage, int lane, bool twoTiles)
    {
        // Word rows 0-1 (first k16 step) and 2-3 (second), then the activations of both steps.
        DeviceMath.CopyToShared(stage + c.WeightDst, c.Weights, c.WeightValid != 0);
        DeviceMath.CopyToShared(stage + c.WeightDst + (2 * RowPitch), c.Weights + (8L * a.Layer.OutFeatures), c.WeightValid != 0);
        CopyToShared8(stage + c.ActivationDst, c.Activations, c.RowValid != 0);
        CopyToShared8(stage + c.ActivationDst + 512, c.Activations + 32, c.RowValid != 0);
        if (twoTiles)
        {
            long high = c.Activations + (16L * a.Layer.InFeatures);
            CopyToShared8(stage + c.ActivationDst + 8, high, c.HighRowValid != 0);
            CopyToShared8(stage + c.ActivationDst + 520, high + 32, c.HighRowValid != 0);
        }

        if (c.NewGroup != 0 && lane < 10)
        {
            // Lanes 0-7: 8 scales each (the column block's 64); lanes 8-9: 4 zero words each (its 64 nibbles).
            int n = a.Layer.OutFeatures;
            int sc = (c.Block * BlockColumns) + (8 * lane);
            int zw = (c.Block * (BlockColumns / 8)) + (4 * (lane - 8));
            bool scale = lane < 8;
            long src = scale ? a.ScalesAddress + ((((long)c.Group * n) + sc) * 2) : a.QZerosAddress + ((((long)c.Group * (n / 8)) + zw) * 4);
            DeviceMath.CopyToShared(stage + (uint)(ConstantsOffset + (16 * lane)), src, scale ? sc < n : zw < n / 8);
        }
    }

    /// <summary>cp.async of 8 bytes through L1 (the activations are read by every warp); zeros when not valid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyToShared8(uint dst, long src, bool valid) =>
        CudaAsm.Emit("cp.async.ca.shared.global [%0], [%1], 8, %2;", dst, src, valid ? 8u : 0u);

    /// <summary>
    /// CPU accelerator: the sums of warp <paramref name="warp"/>'s units in <paramref name="from"/> .. <paramref name="to"/> - 1
    /// of column block <paramref name="column"/> into its area of the reduction tile, by plain loops: weights dequantized
    /// as on CUDA ((q - zero) * scale rounded to fp16), products summed in fp32.
    /// </summary>
    private static void AddUnitsManaged(SmallBatchArgs a, ArrayView<float> tile, int column, int warp, int from, int to)
    {
        int columnStart = column * a.KUnits;
        for (int row = 0; row < a.Layer.Rows; row++)
        {
            for (int c = 0; c < BlockColumns; c++)
            {
                int col = (column * BlockColumns) + c;
                float sum = 0f;
                for (int u = from; u < to && col < a.Layer.OutFeatures; u++)
                {
                    if (!Owns(u, warp))
                    {
                        continue;
                    }

                    int p0 = UnitInputs * (u - columnStart);
                    for (int p = p0; p < p0 + UnitInputs; p++)
                    {
                        sum += DequantizedWeight(a, p, col) * Activation(a, row, p);
                    }
                }

                tile[(row * BlockColumns) + c] = sum;
            }
        }
    }

    /// <summary>The fp16 weight of column <paramref name="col"/> at storage position <paramref name="p"/> of the input layout.</summary>
    private static float DequantizedWeight(SmallBatchArgs a, int p, int col)
    {
        // Storage position p holds sorted input 8 (p / 8) + (p % 8) / 2 + 4 (p % 2) (ActivationLayout's pair order).
        int k = (8 * (p >> 3)) + ((p & 7) >> 1) + (4 * (p & 1));
        int n = a.Layer.OutFeatures;
        int group = k / a.Layer.GroupSize;
        uint q = (a.Layer.QWeight[((long)(k >> 3) * n) + col] >> (4 * (k & 7))) & 0xFu;
        uint z = ((a.Layer.QZeros[((long)group * (n / 8)) + (col >> 3)] >> (4 * (col & 7))) & 0xFu) + (uint)a.Layer.ZeroOffset;
        float scale = DeviceMath.HalfBitsToFloat(a.Layer.Scales[((long)group * n) + col]);
        return DeviceMath.HalfBitsToFloat(DeviceMath.FloatToHalfBits(((int)q - (int)z) * scale));
    }

    /// <summary>The fp16 activation of row <paramref name="row"/> at storage position <paramref name="p"/>.</summary>
    private static float Activation(SmallBatchArgs a, int row, int p)
    {
        uint pair = a.Layer.Input[(((long)row * a.Layer.InFeatures) + p) >> 1];
        return DeviceMath.HalfBitsToFloat((p & 1) == 0 ? pair & 0xFFFFu : pair >> 16);
    }

    // ---- Inline PTX (generated; CUDA only). Named registers, declared once by DeclareRegisters: fa0..fa15 the
    // dequantized A fragments (tile i: fa(4i) .. fa(4i + 3)), xa0..xa3 the B fragments (rows g and g + 8), acc0..acc15
    // the sums of rows 0-7 (tile i: acc(4i) .. + 3 in the mma C order: (column g, row 2t), (g, 2t + 1), (g + 8, 2t),
    // (g + 8, 2t + 1)) and acc16..acc31 those of rows 8-15, nzl/nwl/nzh/nwh the -(1024 + z) and -(64 + z) of columns g
    // and g + 8 of each tile, scl/sch their scales in both fp16 lanes, r16 = 1/16 in both lanes. ILGPU returns several
    // asm outputs only through local memory, which ptxas keeps in memory next to cp.async (see GptqGemmKernels), so no
    // asm block here has outputs. ----

    /// <summary>Declares the kernel's named registers (see the section comment) and zeroes the accumulators.</summary>
    private const string DeclareRegisters =
        ".reg .b32 fa<16>, xa<4>, nzl<4>, nwl<4>, nzh<4>, nwh<4>, scl<4>, sch<4>, r16; " +
        ".reg .f32 acc<32>; " +
        "mov.b32 r16, 0x2C002C00; " +
        "mov.f32 acc0, 0f00000000; mov.f32 acc1, 0f00000000; mov.f32 acc2, 0f00000000; mov.f32 acc3, 0f00000000; mov.f32 acc4, 0f00000000; mov.f32 acc5, 0f00000000; mov.f32 acc6, 0f00000000; mov.f32 acc7, 0f00000000; mov.f32 acc8, 0f00000000; mov.f32 acc9, 0f00000000; mov.f32 acc10, 0f00000000; mov.f32 acc11, 0f00000000; mov.f32 acc12, 0f00000000; mov.f32 acc13, 0f00000000; mov.f32 acc14, 0f00000000; mov.f32 acc15, 0f00000000; mov.f32 acc16, 0f00000000; mov.f32 acc17, 0f00000000; mov.f32 acc18, 0f00000000; mov.f32 acc19, 0f00000000; mov.f32 acc20, 0f00000000; mov.f32 acc21, 0f00000000; mov.f32 acc22, 0f00000000; mov.f32 acc23, 0f00000000; mov.f32 acc24, 0f00000000; mov.f32 acc25, 0f00000000; mov.f32 acc26, 0f00000000; mov.f32 acc27, 0f00000000; mov.f32 acc28, 0f00000000; mov.f32 acc29, 0f00000000; mov.f32 acc30, 0f00000000; mov.f32 acc31, 0f00000000;";

    /// <summary>A group's constants from the stage's copy: fp16 scales (%0 = constants + 2 g) and -(1024 + z), -(64 + z) from the zero nibbles (%1 = constants, %2 = 4 g, %3 / %4 the offsets with the v1 zero shift).</summary>
    private const string SetGroup =
        "{ .reg .b32 z, w; .reg .b16 s; " +
        "ld.shared.b16 s, [%0+0]; mov.b32 scl0, {s, s}; ld.shared.b16 s, [%0+16]; mov.b32 sch0, {s, s}; " +
        "ld.shared.b32 w, [%1+128]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzl0, z, 0x00010001, %3; mad.lo.u32 nwl0, z, 0x00100010, %4; " +
        "ld.shared.b32 w, [%1+132]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzh0, z, 0x00010001, %3; mad.lo.u32 nwh0, z, 0x00100010, %4; " +
        "ld.shared.b16 s, [%0+32]; mov.b32 scl1, {s, s}; ld.shared.b16 s, [%0+48]; mov.b32 sch1, {s, s}; " +
        "ld.shared.b32 w, [%1+136]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzl1, z, 0x00010001, %3; mad.lo.u32 nwl1, z, 0x00100010, %4; " +
        "ld.shared.b32 w, [%1+140]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzh1, z, 0x00010001, %3; mad.lo.u32 nwh1, z, 0x00100010, %4; " +
        "ld.shared.b16 s, [%0+64]; mov.b32 scl2, {s, s}; ld.shared.b16 s, [%0+80]; mov.b32 sch2, {s, s}; " +
        "ld.shared.b32 w, [%1+144]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzl2, z, 0x00010001, %3; mad.lo.u32 nwl2, z, 0x00100010, %4; " +
        "ld.shared.b32 w, [%1+148]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzh2, z, 0x00010001, %3; mad.lo.u32 nwh2, z, 0x00100010, %4; " +
        "ld.shared.b16 s, [%0+96]; mov.b32 scl3, {s, s}; ld.shared.b16 s, [%0+112]; mov.b32 sch3, {s, s}; " +
        "ld.shared.b32 w, [%1+152]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzl3, z, 0x00010001, %3; mad.lo.u32 nwl3, z, 0x00100010, %4; " +
        "ld.shared.b32 w, [%1+156]; bfe.u32 z, w, %2, 4; mad.lo.u32 nzh3, z, 0x00010001, %3; mad.lo.u32 nwh3, z, 0x00100010, %4; " +
        "}";

    /// <summary>One k16 step for batch rows 0-7: the lane's 8 packed words (%0, shifted right by %1) dequantized into the A fragments of the 4 column tiles, the activations (%2) as B, 4 mmas.</summary>
    private const string MmaLow =
        "{ .reg .b32 w, u; " +
        "ld.shared.v4.b32 {xa0,xa1,xa2,xa3}, [%2]; " +
        "ld.shared.b32 w, [%0+0]; ld.shared.b32 u, [%0+32]; shr.b32 w, w, %1; shr.b32 u, u, %1; " +
        "lop3.b32 fa0, w, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa2, w, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 fa1, u, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa3, u, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 fa0, fa0, nzl0; fma.rn.f16x2 fa2, fa2, r16, nwl0; add.rn.f16x2 fa1, fa1, nzh0; fma.rn.f16x2 fa3, fa3, r16, nwh0; " +
        "mul.rn.f16x2 fa0, fa0, scl0; mul.rn.f16x2 fa2, fa2, scl0; mul.rn.f16x2 fa1, fa1, sch0; mul.rn.f16x2 fa3, fa3, sch0; " +
        "" + DeviceMath.MmaF16F32 + "{acc0,acc1,acc2,acc3}, {fa0,fa1,fa2,fa3}, {xa0,xa1}, {acc0,acc1,acc2,acc3}; " +
        "ld.shared.b32 w, [%0+64]; ld.shared.b32 u, [%0+96]; shr.b32 w, w, %1; shr.b32 u, u, %1; " +
        "lop3.b32 fa4, w, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa6, w, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 fa5, u, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa7, u, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 fa4, fa4, nzl1; fma.rn.f16x2 fa6, fa6, r16, nwl1; add.rn.f16x2 fa5, fa5, nzh1; fma.rn.f16x2 fa7, fa7, r16, nwh1; " +
        "mul.rn.f16x2 fa4, fa4, scl1; mul.rn.f16x2 fa6, fa6, scl1; mul.rn.f16x2 fa5, fa5, sch1; mul.rn.f16x2 fa7, fa7, sch1; " +
        "" + DeviceMath.MmaF16F32 + "{acc4,acc5,acc6,acc7}, {fa4,fa5,fa6,fa7}, {xa0,xa1}, {acc4,acc5,acc6,acc7}; " +
        "ld.shared.b32 w, [%0+128]; ld.shared.b32 u, [%0+160]; shr.b32 w, w, %1; shr.b32 u, u, %1; " +
        "lop3.b32 fa8, w, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa10, w, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 fa9, u, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa11, u, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 fa8, fa8, nzl2; fma.rn.f16x2 fa10, fa10, r16, nwl2; add.rn.f16x2 fa9, fa9, nzh2; fma.rn.f16x2 fa11, fa11, r16, nwh2; " +
        "mul.rn.f16x2 fa8, fa8, scl2; mul.rn.f16x2 fa10, fa10, scl2; mul.rn.f16x2 fa9, fa9, sch2; mul.rn.f16x2 fa11, fa11, sch2; " +
        "" + DeviceMath.MmaF16F32 + "{acc8,acc9,acc10,acc11}, {fa8,fa9,fa10,fa11}, {xa0,xa1}, {acc8,acc9,acc10,acc11}; " +
        "ld.shared.b32 w, [%0+192]; ld.shared.b32 u, [%0+224]; shr.b32 w, w, %1; shr.b32 u, u, %1; " +
        "lop3.b32 fa12, w, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa14, w, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 fa13, u, 0x000F000F, 0x64006400, 0xEA; lop3.b32 fa15, u, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 fa12, fa12, nzl3; fma.rn.f16x2 fa14, fa14, r16, nwl3; add.rn.f16x2 fa13, fa13, nzh3; fma.rn.f16x2 fa15, fa15, r16, nwh3; " +
        "mul.rn.f16x2 fa12, fa12, scl3; mul.rn.f16x2 fa14, fa14, scl3; mul.rn.f16x2 fa13, fa13, sch3; mul.rn.f16x2 fa15, fa15, sch3; " +
        "" + DeviceMath.MmaF16F32 + "{acc12,acc13,acc14,acc15}, {fa12,fa13,fa14,fa15}, {xa0,xa1}, {acc12,acc13,acc14,acc15}; " +
        "}";

    /// <summary>The same step for batch rows 8-15: the fragments MmaLow dequantized, times rows 8-15's activations.</summary>
    private const string MmaHigh =
        "" + DeviceMath.MmaF16F32 + "{acc16,acc17,acc18,acc19}, {fa0,fa1,fa2,fa3}, {xa2,xa3}, {acc16,acc17,acc18,acc19}; " +
        "" + DeviceMath.MmaF16F32 + "{acc20,acc21,acc22,acc23}, {fa4,fa5,fa6,fa7}, {xa2,xa3}, {acc20,acc21,acc22,acc23}; " +
        "" + DeviceMath.MmaF16F32 + "{acc24,acc25,acc26,acc27}, {fa8,fa9,fa10,fa11}, {xa2,xa3}, {acc24,acc25,acc26,acc27}; " +
        "" + DeviceMath.MmaF16F32 + "{acc28,acc29,acc30,acc31}, {fa12,fa13,fa14,fa15}, {xa2,xa3}, {acc28,acc29,acc30,acc31};";

    /// <summary>Stores batch rows 0-7 of the warp's sums to its area of the reduction tile (%0: the lane's first element; rows %2 and %2 + 1 when below %1) and zeroes them.</summary>
    private const string StoreLow =
        "{ .reg .pred pe, po; .reg .s32 r1; add.s32 r1, %2, 1; setp.lt.s32 pe, %2, %1; setp.lt.s32 po, r1, %1; " +
        "@pe st.shared.f32 [%0+0], acc0; " +
        "@po st.shared.f32 [%0+256], acc1; " +
        "@pe st.shared.f32 [%0+32], acc2; " +
        "@po st.shared.f32 [%0+288], acc3; " +
        "@pe st.shared.f32 [%0+64], acc4; " +
        "@po st.shared.f32 [%0+320], acc5; " +
        "@pe st.shared.f32 [%0+96], acc6; " +
        "@po st.shared.f32 [%0+352], acc7; " +
        "@pe st.shared.f32 [%0+128], acc8; " +
        "@po st.shared.f32 [%0+384], acc9; " +
        "@pe st.shared.f32 [%0+160], acc10; " +
        "@po st.shared.f32 [%0+416], acc11; " +
        "@pe st.shared.f32 [%0+192], acc12; " +
        "@po st.shared.f32 [%0+448], acc13; " +
        "@pe st.shared.f32 [%0+224], acc14; " +
        "@po st.shared.f32 [%0+480], acc15; " +
        "mov.f32 acc0, 0f00000000; mov.f32 acc1, 0f00000000; mov.f32 acc2, 0f00000000; mov.f32 acc3, 0f00000000; mov.f32 acc4, 0f00000000; mov.f32 acc5, 0f00000000; mov.f32 acc6, 0f00000000; mov.f32 acc7, 0f00000000; mov.f32 acc8, 0f00000000; mov.f32 acc9, 0f00000000; mov.f32 acc10, 0f00000000; mov.f32 acc11, 0f00000000; mov.f32 acc12, 0f00000000; mov.f32 acc13, 0f00000000; mov.f32 acc14, 0f00000000; mov.f32 acc15, 0f00000000; " +
        "}";

    /// <summary>The same for batch rows 8-15 (%0 and %2 eight rows on).</summary>
    private const string StoreHigh =
        "{ .reg .pred pe, po; .reg .s32 r1; add.s32 r1, %2, 1; setp.lt.s32 pe, %2, %1; setp.lt.s32 po, r1, %1; " +
        "@pe st.shared.f32 [%0+0], acc16; " +
        "@po st.shared.f32 [%0+256], acc17; " +
        "@pe st.shared.f32 [%0+32], acc18; " +
        "@po st.shared.f32 [%0+288], acc19; " +
        "@pe st.shared.f32 [%0+64], acc20; " +
        "@po st.shared.f32 [%0+320], acc21; " +
        "@pe st.shared.f32 [%0+96], acc22; " +
        "@po st.shared.f32 [%0+352], acc23; " +
        "@pe st.shared.f32 [%0+128], acc24; " +
        "@po st.shared.f32 [%0+384], acc25; " +
        "@pe st.shared.f32 [%0+160], acc26; " +
        "@po st.shared.f32 [%0+416], acc27; " +
        "@pe st.shared.f32 [%0+192], acc28; " +
        "@po st.shared.f32 [%0+448], acc29; " +
        "@pe st.shared.f32 [%0+224], acc30; " +
        "@po st.shared.f32 [%0+480], acc31; " +
        "mov.f32 acc16, 0f00000000; mov.f32 acc17, 0f00000000; mov.f32 acc18, 0f00000000; mov.f32 acc19, 0f00000000; mov.f32 acc20, 0f00000000; mov.f32 acc21, 0f00000000; mov.f32 acc22, 0f00000000; mov.f32 acc23, 0f00000000; mov.f32 acc24, 0f00000000; mov.f32 acc25, 0f00000000; mov.f32 acc26, 0f00000000; mov.f32 acc27, 0f00000000; mov.f32 acc28, 0f00000000; mov.f32 acc29, 0f00000000; mov.f32 acc30, 0f00000000; mov.f32 acc31, 0f00000000; " +
        "}";

}

/// <summary>
/// A warp's copy side: the unit it copies next, that unit's column block, its place in the column block (Step) and quantization group, whether
/// the group's constants must be copied with it (the warp's first unit, or a new group, chunk or column block), and the
/// lane's source addresses, moved by additions as the unit advances.
/// </summary>
internal struct CopyCursor
{
    public int Unit;
    public int Block;
    public int Step;
    public int Group;
    public int InGroup;
    public int NewGroup;

    /// <summary>The lane's 16 weight bytes of the unit: word row 2 step + lane / 16, columns 64 block + 4 (lane % 16) ...</summary>
    public long Weights;

    /// <summary>The lane's 8 activation bytes of the unit: row lane / 4, chunk lane % 4 of the step.</summary>
    public long Activations;

    /// <summary>Non-zero while the lane's weight chunk lies inside the layer (the last column block may be partial).</summary>
    public int WeightValid;

    /// <summary>Non-zero where the lane's row (lane / 4) and row + 8 exist; other lanes copy zeros.</summary>
    public int RowValid;
    public int HighRowValid;
    public int Lane;
    public int WeightColumn;
    public uint WeightDst;
    public uint ActivationDst;

    /// <summary>The cursor of unit <paramref name="unit"/> (column-block-major) for lane <paramref name="lane"/>.</summary>
    public static CopyCursor At(int unit, SmallBatchArgs a, int lane)
    {
        var c = default(CopyCursor);
        c.Unit = unit;
        c.Block = unit / a.KUnits;
        c.Step = unit - (c.Block * a.KUnits);
        c.Group = c.Step / a.GroupUnits;
        c.InGroup = c.Step - (c.Group * a.GroupUnits);
        c.NewGroup = 1;
        c.Lane = lane;
        int wordRow = lane >> 4;
        int row = lane >> 2;
        c.WeightColumn = (lane & 15) * 4;
        c.WeightDst = (uint)((wordRow * GptqSmallBatchKernels.RowPitch) + ((lane & 15) * 16));
        c.ActivationDst = (uint)(GptqSmallBatchKernels.ActivationOffset + (16 * lane));
        c.RowValid = row < a.Layer.Rows ? 1 : 0;
        c.HighRowValid = row + 8 < a.Layer.Rows ? 1 : 0;
        return c.Locate(a);
    }

    /// <summary>The warp's next unit: the next one in its chunk, else the first of its next chunk (the other warps' chunks skipped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public CopyCursor Next(SmallBatchArgs a)
    {
        var c = this;
        c.Unit++;
        c.Step++;
        c.InGroup++;
        c.NewGroup = 0;
        c.Weights += 16L * a.Layer.OutFeatures;
        c.Activations += 64;
        if ((c.Unit & (GptqSmallBatchKernels.ChunkSize - 1)) == 0 || c.Step == a.KUnits)
        {
            // A new chunk (the other warps' chunks skipped) or column block: placed afresh, once per chunk.
            if ((c.Unit & (GptqSmallBatchKernels.ChunkSize - 1)) == 0)
            {
                int skip = (GptqSmallBatchKernels.WarpsPerBlock - 1) * GptqSmallBatchKernels.ChunkSize;
                c.Unit += skip;
                c.Step += skip;
            }

            while (c.Step >= a.KUnits)
            {
                c.Step -= a.KUnits;
                c.Block++;
            }

            c.Group = c.Step / a.GroupUnits;
            c.InGroup = c.Step - (c.Group * a.GroupUnits);
            c.NewGroup = 1;
            return c.Locate(a);
        }

        if (c.InGroup == a.GroupUnits)
        {
            c.InGroup = 0;
            c.Group++;
            c.NewGroup = 1;
        }

        return c;
    }

    /// <summary>The lane's source addresses for the cursor's column block and step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private CopyCursor Locate(SmallBatchArgs a)
    {
        var c = this;
        int lane = c.Lane;
        int column = (c.Block * GptqSmallBatchKernels.BlockColumns) + c.WeightColumn;
        c.Weights = a.Layer.QWeightAddress + (((((long)((4 * c.Step) + (lane >> 4))) * a.Layer.OutFeatures) + column) * 4);
        c.WeightValid = column < a.Layer.OutFeatures ? 1 : 0;
        c.Activations = a.Layer.InputAddress + (((((long)(lane >> 2)) * a.Layer.InFeatures) + (GptqSmallBatchKernels.UnitInputs * c.Step) + (4 * (lane & 3))) * 2);
        return c;
    }
}
