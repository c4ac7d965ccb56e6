// GPTQ kernel for 1 to 16 input rows (decode, speculative verification, a keystroke's changed tail): the packed
// weights stream through a per-warp cp.async ring, each weight is dequantized once into tensor-core A fragments
// (exact q - zero; the scales apply per group after the mma) and multiplied with all rows at once by mma.sync, so 16
// rows cost about what one does. The layer (or up to three layers that share their input rows and in-features, e.g.
// act-order q, k and v) is split evenly over every block the GPU holds at once (stream-K, as Marlin does), and partial
// sums are added in a fixed order, so a row's result is the same bits alone or in a batch.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// Arguments of <see cref="GptqSmallBatchKernels.Run"/>: the launch arguments of up to three linear layers (parts; the
/// GEMV's and GEMM's arguments, with the device addresses of the weights and the input) plus the further addresses
/// cp.async reads and the stream-K scratch. The parts share the row count, in-features, bits, group size and zero
/// convention (read from <see cref="Layer"/>); each has its own weights, input buffer and output columns. Their column
/// blocks form one index space: part 0's, then part 1's from <see cref="FirstBlock1"/>, then part 2's from
/// <see cref="FirstBlock2"/>; an absent part's first block is <see cref="ColumnBlocks"/> (never reached) and its layer a
/// copy of part 0's.
/// </summary>
internal struct SmallBatchArgs
{
    /// <summary>Part 0, its input and output; <see cref="GptqGemvArgs.Rows"/> is 1 to <see cref="GptqSmallBatchKernels.MaxRows"/>. Its row count, in-features, group size and zero offset are every part's.</summary>
    public GptqGemvArgs Layer;

    /// <summary>Part 1 (or a copy of part 0 when absent).</summary>
    public GptqGemvArgs Layer1;

    /// <summary>Part 2 (or a copy of part 0 when absent).</summary>
    public GptqGemvArgs Layer2;

    /// <summary>Device address of part 0's packed zeros, [groups, out / 8].</summary>
    public long QZerosAddress;

    /// <summary>Device address of part 0's fp16 scales, [groups, out].</summary>
    public long ScalesAddress;

    /// <summary>Part 1's zeros, as <see cref="QZerosAddress"/>.</summary>
    public long QZerosAddress1;

    /// <summary>Part 1's scales, as <see cref="ScalesAddress"/>.</summary>
    public long ScalesAddress1;

    /// <summary>Part 2's zeros.</summary>
    public long QZerosAddress2;

    /// <summary>Part 2's scales.</summary>
    public long ScalesAddress2;

    /// <summary>First column block of part 1 (part 0's column blocks), or <see cref="ColumnBlocks"/> without one.</summary>
    public int FirstBlock1;

    /// <summary>First column block of part 2, or <see cref="ColumnBlocks"/> without one.</summary>
    public int FirstBlock2;

    /// <summary>Column blocks of all parts together (each part's own <see cref="GptqSmallBatchKernels.ColumnBlocks"/>, so none spans two parts).</summary>
    public int ColumnBlocks;

    /// <summary>Device address of <see cref="Partials"/> (read past L1: other multiprocessors wrote it).</summary>
    public long PartialsAddress;

    /// <summary>Stream-K partial sums: [slot][16 rows][64 columns] fp32 (see <see cref="GptqSmallBatchKernels"/>).</summary>
    public ArrayView<float> Partials;

    /// <summary>[column blocks of the launch] arrivals per column block; every launch leaves them at zero.</summary>
    public ArrayView<int> Arrivals;

    /// <summary>Device address of <see cref="Arrivals"/> (the arrival is an acquire-release atomic in PTX).</summary>
    public long ArrivalsAddress;

    /// <summary>Blocks in the launch: the stream-K split depends on it and on the layers' units, never on the row count.</summary>
    public int Blocks;

    /// <summary>Units of K (32 inputs each, two mma k16 steps): InFeatures / 32.</summary>
    public int KUnits;

    /// <summary>Units per quantization group: GroupSize / 32.</summary>
    public int GroupUnits;

    /// <summary>The part that owns column block <paramref name="block"/>: 0, 1 or 2 (two compares; absent parts start at <see cref="ColumnBlocks"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int PartOf(int block) => (block >= FirstBlock1 ? 1 : 0) + (block >= FirstBlock2 ? 1 : 0);

    /// <summary>The layer of part <paramref name="part"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly GptqGemvArgs PartLayer(int part) => part == 0 ? Layer : part == 1 ? Layer1 : Layer2;

    /// <summary>The first column block of part <paramref name="part"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int PartFirstBlock(int part) => part == 0 ? 0 : part == 1 ? FirstBlock1 : FirstBlock2;
}

/// <summary>
/// GPTQ 4-bit matrix product for 1 to 16 rows. Launch geometry: <see cref="SmallBatchArgs.Blocks"/> blocks of
/// <see cref="BlockThreads"/>, as many as the GPU holds at once.
/// <para>
/// <b>Work split.</b> The output columns form column blocks of 64 (four 16-column mma tiles); a column block's K is
/// units of 32 inputs (two mma k16 steps), so the layer is (column blocks x K units) units, taken in column-block-major
/// order and cut into equal contiguous ranges, one per thread block (stream-K). The part of a range in one column block
/// is a segment, and each segment is cut into four contiguous slices, one per warp, whose lengths differ by at most one
/// unit (<see cref="SliceStart"/>), so the warps finish a segment together: warps that took 4-unit chunks in turn
/// finished a segment up to 4 units apart, and barrier stalls were 13-15% of the narrow layers' warp samples. A warp loads
/// a quantization group's constants once per run of its slice within the group. At the end of each segment the warps'
/// sums are in a shared reduction tile; they add the four in
/// warp order and, unless the range holds the whole column block, store the result in the range's scratch slot
/// (slot = block index + column block, unique because ranges are in order). The thread block whose arrival completes a
/// column block (an atomic count; the number of contributors follows from the split) adds the slots in order, then the
/// bias and the residual, and writes the output. No float atomics, so the result does not depend on timing, and
/// nothing in it depends on the row count.
/// </para>
/// <para>
/// <b>Parts.</b> One launch may cover up to three layers that share their rows and in-features (act-order q, k and v,
/// or gate and up, whose input permutations differ so that they cannot be concatenated): their column blocks, part 0's,
/// then part 1's, then part 2's (each part's own, so a column block never spans two), form the column-block index above,
/// and the split, the scratch slots and the arrival counts use it unchanged. Seven launches per decoder layer become
/// four, and with them the ramp and tail each one-wave launch costs. Whatever reads a layer resolves the part owning
/// the column block where it is placed, never per unit: a run start (the weights', activations' and constants' sources
/// and the part's out-features, whose word rows are the weights' stride), a segment end (the output store with the
/// part's bias, offset and accumulate) and the CPU path. One layer is part 0 with parts 1 and 2 starting past the end,
/// so each of those places costs it one compare.
/// </para>
/// <para>
/// <b>The mma with swapped operands.</b> mma.m16n8k16 multiplies A (16 x 16) by B (16 x 8). Weights are the A operand
/// (16 output columns of a tile x 16 inputs) and the activations B (16 inputs x 8 rows; rows 8-15 a second mma on the
/// same A), so one dequantized weight feeds up to 16 rows and a single row wastes only tensor-core slots, which are
/// plentiful. Lane (g = lane / 4, t = lane % 4) holds A rows g and g + 8 at k = 2t, 2t + 1, 2t + 8, 2t + 9, and B column
/// g (batch row g) at the same k. Which output column an A row is and which input a k is are free as long as A, B and
/// the sums agree, so they follow the checkpoint's layout: A rows g and g + 8 of tile i are columns 8 g + 2 i and
/// 8 g + 2 i + 1, so a lane owns the 8 adjacent columns 8 g .. 8 g + 7 (one 16-byte load of its scales, one zero word),
/// and the unit's word row t (inputs 8 t .. 8 t + 7 of the 32) feeds lane t's k: step 0 is the words' bytes 0 and 2,
/// step 1 bytes 1 and 3 (shifted down 8 bits), and lop3 with 0x000F000F / 0x00F000F0 gives the half2 (1024 + q) /
/// (1024 + 16 q) of storage positions 8 t + 4 j + (0, 1) / (2, 3) of step j in the activation layout's pair order. So a
/// lane reads its 8 words of a unit with two 16-byte shared loads and its activations of both steps with one, and
/// nothing is repacked or stored twice. The weights are dequantized to the exact integers q - zero (add.f16x2 of
/// -(1024 + zero), or fma.f16x2 by 1/16 and -(64 + zero)); the mmas sum them times the activations in fp32 into the
/// group sums (pa, registers), and at the group's end (a run start, see the ring, or the segment end) the group sums
/// times the columns' fp32 scales are added to the warp's sums, which live in its area of the reduction tile
/// (FlushLow / FlushHigh: load, fma, store, 16 bytes a lane and access). No mul.f16x2 per weight, and no rounding of
/// (q - zero) * scale to fp16. The tile's rows keep their 16-byte chunks swizzled as the weights' are (TileIndex): with
/// plain rows a lane's rows 2 t sit 512 bytes apart, so the four t of each access hit the same banks and every flush
/// access was 4-way conflicted (64-bit accesses then: 8 wavefronts each instead of 2). That cost the 9-16 loop, which
/// flushes twice the sums, 256 shared-memory wavefronts per group (64 per unit at g128, two thirds of all its shared
/// traffic); now 64.
/// </para>
/// <para>
/// <b>The ring.</b> Per unit a warp copies 1 KB of weights (4 word rows x 64 columns; lane L copies 16 bytes of word rows
/// L / 16 and L / 16 + 2, their 16-byte chunks XOR-swizzled per row so that the lanes' shared loads hit distinct
/// banks), 16 bytes of activations per lane and row half (rows g and g + 8, zero-filled past the batch), and at a new
/// group the column block's 64 scales and zero nibbles. <see cref="Stages"/> - 1 units are in flight per warp, with no
/// registers held for them and no block-wide barrier: a warp only reads what its own lanes copied (a warp barrier after
/// the wait makes the other lanes' copies visible). The copy cursor moves in runs (units of one slice, column block and
/// group): within a run a unit only advances two addresses and a countdown; a run start recomputes the place (the group
/// by a multiply-high with a per-thread constant, see <see cref="CopyCursor.GroupMagic"/>, not a division) and flags
/// the unit's group start in a FIFO the compute side pops; the compute side unpacks the group's zeros with one prmt
/// and one lea per fp16x2 constant (<see cref="SetGroup"/>). 1-8 and 9-16 rows run two copies of the loop. Requirements
/// (<see cref="Supports"/>): 4 bits, out a multiple of 32 (16-byte copies of the zeros), in and the group size
/// multiples of 32.
/// </para>
/// On ILGPU's CPU accelerator (tests) lane 0 of each warp computes its units with plain loops over the same arithmetic
/// (each unit's exact (q - zero) x activation sum times its scale) into the same reduction tile, and everything after
/// that is the same code, so all but the inline PTX runs in CI.
/// </summary>
internal static class GptqSmallBatchKernels
{
    public const int BlockThreads = 128;
    public const int WarpsPerBlock = BlockThreads / 32;
    public const int MaxRows = 16;

    /// <summary>Output columns per column block (four mma tiles).</summary>
    public const int BlockColumns = 64;

    /// <summary>Inputs per unit of work: two mma k16 steps.</summary>
    public const int UnitInputs = 32;

    /// <summary>Units in the ring per warp: two in flight while one is computed.</summary>
    private const int Stages = 3;

    /// <summary>Bytes of a unit's packed words in a stage: 4 word rows x 64 columns, each row's 16-byte chunks swizzled (see <see cref="WeightChunk"/>).</summary>
    private const int WeightBytes = 4 * 256;

    /// <summary>Byte offset of the activations within a stage: rows 0-7 (lane L's 16 bytes at 16 L), then rows 8-15 (512 on).</summary>
    public const int ActivationOffset = WeightBytes;

    private const int ConstantsOffset = ActivationOffset + 1024;

    /// <summary>One stage of a warp (a unit): weights (1 KB), activations (2 x 512 bytes), scales (128) and zeros (32).</summary>
    private const int StageBytes = ConstantsOffset + 160;

    private const int WarpBytes = Stages * StageBytes;

    /// <summary>Floats of one warp's area in the reduction tile (and of one scratch slot): 16 rows x 64 columns.</summary>
    private const int TileFloats = MaxRows * BlockColumns;

    /// <summary>The reduction tile, [warp][row][column] fp32 (chunks of 4 columns swizzled per row, see <see cref="TileIndex"/>), after the four rings; a multiple of 32 bytes (the flush finds a lane's second chunk by xor 16).</summary>
    private const int ReduceOffset = WarpsPerBlock * WarpBytes;

    /// <summary>One int after the reduction tile: whether this block's arrival completed a column block.</summary>
    private const int LastFlagOffset = ReduceOffset + (WarpsPerBlock * TileFloats * 4);

    /// <summary>Bytes of the one static shared allocation (41.9 KB of the 48 KB static limit).</summary>
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
        int units = a.ColumnBlocks * a.KUnits;

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

        var range = new WarpRange { First = first, End = end, Warp = warp };
        if (CudaAsm.IsSupported)
        {
            // Lane (g, t) reads word row t, columns 8 g .. 8 g + 7 (chunks 2 g and 2 g + 1 of the row, swizzled), its
            // own 16 bytes of activations of rows g and g + 8, and its columns' 8 scales and zero word. The offsets live
            // in named registers (ILGPU would recompute them in the loop), declared once for both copies of the loop.
            uint wordAt = (uint)(((lane & 3) * 256) + (WeightChunk(lane & 3, 2 * (lane >> 2)) * 16));
            CudaAsm.Emit(DeclareRegisters, wordAt, (uint)(ActivationOffset + (16 * lane)));

            // Two copies of the loop, for 1-8 and 9-16 rows (a constant after inlining): the former issues no mmas,
            // copies or flushes for rows 8-15 at all.
            if (a.Layer.Rows > 8)
            {
                StreamCuda(a, reduce, lastFlag, block, blocks, units, range, lane, true);
            }
            else
            {
                StreamCuda(a, reduce, lastFlag, block, blocks, units, range, lane, false);
            }

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

    /// <summary>
    /// Where 16-byte chunk <paramref name="chunk"/> (columns 4 chunk .. + 3) of word row <paramref name="row"/> sits in its
    /// 256-byte row of a stage: XOR-swizzled by 0, 1, 4, 5 for rows 0-3, so that the 8 lanes of each quarter-warp's
    /// 16-byte shared loads (2 column pairs x 4 rows) hit 8 different bank quads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int WeightChunk(int row, int chunk) => chunk ^ ((row & 1) | ((row & 2) << 1));

    /// <summary>
    /// Where element <paramref name="e"/> (row e / 64, column e % 64) of a warp's area of the reduction tile is stored:
    /// the row's 16-byte chunks (4 columns each) are swizzled as <see cref="WeightChunk"/> swizzles word row
    /// (row / 2) % 4. Lane (g, t) flushes rows 2 t and 2 t + 1 (and + 8), chunks 2 g and 2 g + 1, with 16-byte
    /// accesses; unswizzled, the four t of a quarter-warp hit the same banks (rows 2 t are 512 bytes apart: 4-way
    /// conflicts), swizzled its 8 lanes hit 8 different bank quads. Only the place changes, never the arithmetic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int TileIndex(int e) => (e & ~0x3C) | (WeightChunk((e >> 7) & 3, (e >> 2) & 15) << 2);

    /// <summary>
    /// Where warp <paramref name="warp"/>'s slice of the segment starting at <paramref name="segment"/> with
    /// <paramref name="length"/> units begins (warp 4 gives the segment's end): the segment cut into four contiguous
    /// slices whose lengths differ by at most one unit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SliceStart(int segment, int length, int warp) => segment + ((length * warp) >> 2);

    /// <summary>Units of the segment [<paramref name="from"/>, <paramref name="to"/>) that warp <paramref name="warp"/> computes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SliceLength(int from, int to, int warp) => SliceStart(from, to - from, warp + 1) - SliceStart(from, to - from, warp);

    /// <summary>
    /// The range on CUDA as one flat loop (nested loops made ILGPU's code run the outer loop's header, a 64-bit division
    /// included, for every unit): each iteration either computes the warp's next unit or, when the warp has none left
    /// in the current column block, ends that segment with the other warps.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StreamCuda(SmallBatchArgs a, ArrayView<float> reduce, ArrayView<int> lastFlag, int block, int blocks, int units, WarpRange range, int lane, bool twoTiles)
    {
        int first = range.First;
        int end = range.End;
        int warp = range.Warp;
        int g = lane >> 2;
        int t = lane & 3;
        uint smem = DeviceMath.SharedBase();
        uint ring = smem + (uint)(warp * WarpBytes);


        // The copy side runs Stages - 1 units ahead; it pushes each unit's NewGroup flag into groupFlags (bit Stages - 1)
        // and the compute side pops its unit's from bit 0, so it follows the ring without a cursor of its own.
        // Copies past the range's end are issued too, with nothing read (zero-filled slots nobody computes), so the
        // copy side has no branch around it. The lane's destinations in a stage and its row flags are constants.
        // Start's division by the group's units as a multiply-high and one correction (see CopyCursor.GroupMagic).
        // The weights and their constants never change between launches, so the first stages' copies of them go out
        // before the wait for the previous kernel (programmatic dependent launch, see GridDependencies.WaitMarker):
        // their DRAM latency passes while that kernel ends. The activations it writes are copied after the wait, each
        // stage's with its commit, so a stage's copy group (the first one holding both stages' weights) is whole. The
        // second pass walks the cursor again from the first unit (two run steps, once a launch) rather than holding
        // Stages - 1 cursors live across the wait.
        uint groupMagic = CopyCursor.GroupMagic(a);
        var firstLoad = CopyCursor.First(range, a, lane, groupMagic);
        var lanes = CopyLane.Of(a, lane);
        var load = firstLoad;
        int groupFlags = 0;
        for (int s = 0; s < Stages - 1; s++)
        {
            IssueWeights(a, load, lanes, ring + (uint)(s * StageBytes), lane, load.Unit < end);
            groupFlags |= load.NewGroup << s;
            load = load.Next(a, range, lane, groupMagic);
        }

        CudaAsm.Emit(GridDependencies.WaitMarker);
        var activations = firstLoad;
        for (int s = 0; s < Stages - 1; s++)
        {
            IssueActivations(a, activations, lanes, ring + (uint)(s * StageBytes), twoTiles, activations.Unit < end);
            DeviceMath.CommitCopies();
            activations = activations.Next(a, range, lane, groupMagic);
        }

        // The v1 zero offset in every byte: SetGroup adds it to the zero nibbles, spread one a byte.
        uint zeroOffsets = (uint)a.Layer.ZeroOffset * 0x01010101u;

        // The lane's columns 8 g .. 8 g + 3 of row 2 t in the warp's area: chunk 2 g of the row, swizzled (TileIndex);
        // the flush finds chunk 2 g + 1 (columns 8 g + 4 .. + 7) at this offset xor 16.
        uint reduceAt = smem + (uint)(ReduceOffset + (warp * TileFloats * 4) + ((2 * t) * BlockColumns * 4) + (WeightChunk(t, 2 * g) * 16));
        ZeroSums(reduceAt, twoTiles);
        uint lastStage = ring + ((Stages - 1) * StageBytes);
        uint loadStage = lastStage;
        uint stage = ring;
        int column = first / a.KUnits;
        int segmentEnd = XMin(end, (column + 1) * a.KUnits);
        int remaining = SliceLength(first, segmentEnd, warp);
        while (true)
        {
            if (remaining > 0)
            {
                // This lane's copies of the unit have landed; the warp barrier makes the other lanes' visible and keeps
                // the slot refilled below (read in the previous iteration) from being overwritten under a slower lane.
                DeviceMath.WaitUntilCopyGroupsPending(Stages - 2);
                Warp.Barrier();
                Issue(a, load, lanes, loadStage, lane, twoTiles, load.Unit < end);
                groupFlags |= load.NewGroup << (Stages - 1);
                load = load.Next(a, range, lane, groupMagic);
                DeviceMath.CommitCopies();
                loadStage = loadStage == lastStage ? ring : loadStage + StageBytes;
                int newGroup = groupFlags & 1;
                groupFlags >>= 1;
                if (newGroup != 0)
                {
                    // A new group (or slice): the finished group's sums, scaled, are added to the warp's sums in the
                    // reduction tile; the next group's start from zero.
                    CudaAsm.Emit(FlushLow, reduceAt);
                    if (twoTiles)
                    {
                        CudaAsm.Emit(FlushHigh, reduceAt);
                    }

                    CudaAsm.Emit(SetGroup, stage + (uint)(ConstantsOffset + (16 * g)), stage + (uint)(ConstantsOffset + 128 + (4 * g)), zeroOffsets);
                    if (twoTiles)
                    {
                        CudaAsm.Emit(MmaUnitFirst16, stage);
                    }
                    else
                    {
                        CudaAsm.Emit(MmaUnitFirst, stage);
                    }
                }
                else if (twoTiles)
                {
                    CudaAsm.Emit(MmaUnit16, stage);
                }
                else
                {
                    CudaAsm.Emit(MmaUnit, stage);
                }

                stage = stage == lastStage ? ring : stage + StageBytes;
                remaining--;
            }
            else
            {
                CudaAsm.Emit(FlushLow, reduceAt);
                if (twoTiles)
                {
                    CudaAsm.Emit(FlushHigh, reduceAt);
                }

                FinishSegment(a, reduce, lastFlag, block, blocks, units, column);
                ZeroSums(reduceAt, twoTiles);
                if (segmentEnd >= end)
                {
                    break;
                }

                int segment = segmentEnd;
                column++;
                segmentEnd = XMin(end, segment + a.KUnits);
                remaining = SliceLength(segment, segmentEnd, warp);
            }
        }

        DeviceMath.WaitForAllCopies();
    }

    /// <summary>Zeroes the lane's elements of the warp's area of the reduction tile (the warp's sums) and its group sums. CUDA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ZeroSums(uint reduceAt, bool twoTiles)
    {
        CudaAsm.Emit(ZeroLow, reduceAt);
        if (twoTiles)
        {
            CudaAsm.Emit(ZeroHigh, reduceAt);
        }
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

        // The output goes to the part owning the column block, at its own column (once per segment, not per element).
        int part = a.PartOf(column);
        var layer = a.PartLayer(part);
        int partColumn = column - a.PartFirstBlock(part);
        for (int e = Group.IdxX; e < elements; e += BlockThreads)
        {
            int at = TileIndex(e);
            float sum = reduce[at] + reduce[TileFloats + at] + reduce[(2 * TileFloats) + at] + reduce[(3 * TileFloats) + at];
            if (count == 1)
            {
                WriteOutput(layer, partColumn, e, sum);
            }
            else
            {
                a.Partials[slot + e] = sum;
            }
        }

        if (count > 1)
        {
            // The block's stores happen before thread 0's arrival (the barrier), which releases them device-wide and,
            // for the last block, acquires every other block's (CUTLASS's semaphore pattern): no fence for every
            // thread, which cost two sequentially consistent device fences (MEMBAR.SC.GPU) per segment end.
            Group.Barrier();
            if (Group.IdxX == 0)
            {
                int last = Arrive(a, column) == count - 1 ? 1 : 0;
                if (last != 0)
                {
                    a.Arrivals[column] = 0;
                }

                lastFlag[0] = last;
            }

            Group.Barrier();
            if (lastFlag[0] != 0)
            {
                long firstSlot = (long)(firstBlock + column) * TileFloats;
                for (int e = Group.IdxX; e < elements; e += BlockThreads)
                {
                    float sum = 0f;
                    for (int c = 0; c < count; c++)
                    {
                        sum += LoadPartial(a, firstSlot + ((long)c * TileFloats) + e);
                    }

                    WriteOutput(layer, partColumn, e, sum);
                }
            }
        }

        // The tile and the flag are reused by the next segment.
        Group.Barrier();
    }

    /// <summary>Element e (row e / 64, column e % 64) of column block <paramref name="column"/> of <paramref name="layer"/> (the part's own numbering), with bias and residual as the GEMV writes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteOutput(GptqGemvArgs layer, int column, int e, float sum)
    {
        int col = (column * BlockColumns) + (e & (BlockColumns - 1));
        if (col < layer.OutFeatures)
        {
            GptqGemvKernels.StoreOutput(layer, e / BlockColumns, col, sum);
        }
    }

    /// <summary>Counts this block in for column block <paramref name="column"/> and returns the count before it: on CUDA an acquire-release device-scope atomic, so the caller's earlier stores (its block's, ordered by a barrier) are released and, for the last arrival, the others' acquired.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Arrive(SmallBatchArgs a, int column)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;", out int before, a.ArrivalsAddress + (column * 4L));
            return before;
        }

        MemoryFence.DeviceLevel();
        return Atomic.Add(ref a.Arrivals[column], 1);
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

    /// <summary>Issues a unit's copies into the stage at <paramref name="stage"/>: weights, activations and, when the unit starts a new group for the warp, the group's scales and zeros; all zero-filled, nothing read, unless <paramref name="live"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Issue(SmallBatchArgs a, CopyCursor c, CopyLane l, uint stage, int lane, bool twoTiles, bool live)
    {
        IssueWeights(a, c, l, stage, lane, live);
        IssueActivations(a, c, l, stage, twoTiles, live);
    }

    /// <summary>The lane's 16 bytes of row lane / 4 of the unit (both steps), then of row lane / 4 + 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void IssueActivations(SmallBatchArgs a, CopyCursor c, CopyLane l, uint stage, bool twoTiles, bool live)
    {
        CopyToSharedL1(stage + l.ActivationDst, c.Activations, live && l.RowValid);
        if (twoTiles)
        {
            CopyToSharedL1(stage + l.ActivationDst + 512, c.Activations + (16L * a.Layer.InFeatures), live && l.HighRowValid);
        }
    }

    /// <summary>The unit's weights (word rows 0-1, then 2-3: chunk swizzle 4 more, see WeightChunk) and, at a new group, its scales and zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void IssueWeights(SmallBatchArgs a, CopyCursor c, CopyLane l, uint stage, int lane, bool live)
    {
        bool weights = live && c.WeightValid != 0;
        DeviceMath.CopyToShared(stage + l.WeightDst, c.Weights, weights);
        DeviceMath.CopyToShared(stage + (l.WeightDst ^ 0x240u), c.Weights + (8L * c.OutFeatures), weights);
        if (live && c.NewGroup != 0 && lane < 10)
        {
            // Lanes 0-7: 8 scales each (the column block's 64); lanes 8-9: 4 zero words each (its 64 nibbles), of the
            // part owning the column block, resolved here again once per run rather than carried in the cursor (a
            // 64-bit source there cost register moves in every unit). One copy of the code per part, so part 0 (a
            // single layer: parts 1 and 2 start past the end) reads its addresses straight from the parameters as
            // before, behind one warp-uniform compare.
            uint dst = stage + (uint)(ConstantsOffset + (16 * lane));
            if (c.Block < a.FirstBlock1)
            {
                CopyConstants(dst, lane, c.Block, c.Group, c.OutFeatures, a.ScalesAddress, a.QZerosAddress);
            }
            else if (c.Block < a.FirstBlock2)
            {
                CopyConstants(dst, lane, c.Block - a.FirstBlock1, c.Group, c.OutFeatures, a.ScalesAddress1, a.QZerosAddress1);
            }
            else
            {
                CopyConstants(dst, lane, c.Block - a.FirstBlock2, c.Group, c.OutFeatures, a.ScalesAddress2, a.QZerosAddress2);
            }
        }
    }

    /// <summary>Lane <paramref name="lane"/>'s (0-9) copy of group <paramref name="group"/>'s constants of column block <paramref name="partBlock"/> of a part (its own numbering): lanes 0-7 8 scales each (the column block's 64), lanes 8-9 4 zero words each (its 64 nibbles). Element indices fit in 32 bits (groups x out &lt;= MaxUnits x 64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyConstants(uint dst, int lane, int partBlock, int group, int outFeatures, long scales, long zeros)
    {
        bool scale = lane < 8;
        int rowElements = scale ? outFeatures : outFeatures >> 3;
        int column = scale ? (partBlock * BlockColumns) + (8 * lane) : (partBlock * (BlockColumns / 8)) + (4 * (lane - 8));
        int index = (group * rowElements) + column;
        long src = scale ? scales + ((long)index * 2) : zeros + ((long)index * 4);
        DeviceMath.CopyToShared(dst, src, column < rowElements);
    }

    /// <summary>cp.async of 16 bytes through L1 (the activations are read by every warp); zeros when not valid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyToSharedL1(uint dst, long src, bool valid) =>
        CudaAsm.Emit("cp.async.ca.shared.global [%0], [%1], 16, %2;", dst, src, valid ? 16u : 0u);

    /// <summary>
    /// CPU accelerator: the sums of warp <paramref name="warp"/>'s units in <paramref name="from"/> .. <paramref name="to"/> - 1
    /// of column block <paramref name="column"/> into its area of the reduction tile, by plain loops: as on CUDA, each
    /// unit's exact (q - zero) x activation products are summed in fp32, then scaled by the group's scale.
    /// </summary>
    private static void AddUnitsManaged(SmallBatchArgs a, ArrayView<float> tile, int column, int warp, int from, int to)
    {
        // The part owning the column block: its weights, input and columns (col counts within the part).
        int columnStart = column * a.KUnits;
        int part = a.PartOf(column);
        var layer = a.PartLayer(part);
        int partColumn = column - a.PartFirstBlock(part);
        for (int row = 0; row < a.Layer.Rows; row++)
        {
            for (int c = 0; c < BlockColumns; c++)
            {
                int col = (partColumn * BlockColumns) + c;
                float sum = 0f;
                int mineEnd = SliceStart(from, to - from, warp + 1);
                for (int u = SliceStart(from, to - from, warp); u < mineEnd && col < layer.OutFeatures; u++)
                {
                    // A unit lies in one group (the group size is a multiple of 32).
                    int p0 = UnitInputs * (u - columnStart);
                    float unitSum = 0f;
                    for (int p = p0; p < p0 + UnitInputs; p++)
                    {
                        unitSum += QuantizedDifference(layer, p, col) * Activation(layer, row, p);
                    }

                    sum += unitSum * GroupScale(layer, p0, col);
                }

                tile[TileIndex((row * BlockColumns) + c)] = sum;
            }
        }
    }

    /// <summary>Sorted input of storage position <paramref name="p"/> of the input layout (ActivationLayout's pair order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SortedInput(int p) => (8 * (p >> 3)) + ((p & 7) >> 1) + (4 * (p & 1));

    /// <summary>q - zero of column <paramref name="col"/> at storage position <paramref name="p"/>: an exact small integer.</summary>
    private static float QuantizedDifference(GptqGemvArgs layer, int p, int col)
    {
        int k = SortedInput(p);
        int n = layer.OutFeatures;
        int group = k / layer.GroupSize;
        uint q = (layer.QWeight[((long)(k >> 3) * n) + col] >> (4 * (k & 7))) & 0xFu;
        uint z = ((layer.QZeros[((long)group * (n / 8)) + (col >> 3)] >> (4 * (col & 7))) & 0xFu) + (uint)layer.ZeroOffset;
        return (int)q - (int)z;
    }

    /// <summary>The fp16 scale of column <paramref name="col"/> in the group of storage position <paramref name="p"/>.</summary>
    private static float GroupScale(GptqGemvArgs layer, int p, int col) =>
        DeviceMath.HalfBitsToFloat(layer.Scales[((long)(SortedInput(p) / layer.GroupSize) * layer.OutFeatures) + col]);

    /// <summary>The fp16 activation of row <paramref name="row"/> at storage position <paramref name="p"/>.</summary>
    private static float Activation(GptqGemvArgs layer, int row, int p)
    {
        uint pair = layer.Input[(((long)row * layer.InFeatures) + p) >> 1];
        return DeviceMath.HalfBitsToFloat((p & 1) == 0 ? pair & 0xFFFFu : pair >> 16);
    }

    // ---- Inline PTX (generated; CUDA only). Named registers, declared once by DeclareRegisters: xa0..xa3 the lane's
    // activations of row g (both steps), pa0..pa31 the current group's sums, unscaled, in the mma C order (tile i:
    // pa(4i) .. + 3 = (column 8g + 2i, row 2t), (8g + 2i, 2t + 1), (8g + 2i + 1, 2t), (8g + 2i + 1, 2t + 1); pa16..pa31
    // rows 8-15), nzl/nwl/nzh/nwh the -(1024 + z) and -(64 + z) of columns 8g + 2i and 8g + 2i + 1 in both fp16 lanes,
    // scl/sch their scales in fp32, r16 = 1/16 in both fp16 lanes, fz = 0, wat/wat2/aat the lane's offsets in a stage.
    // The warp's sums live in the reduction tile, not in registers. ILGPU returns several asm outputs only through
    // local memory, which ptxas keeps in memory next to cp.async (see GptqGemmKernels), so no asm block here has
    // outputs. ----

    /// <summary>Declares the kernel's named registers (see the section comment), sets the lane's offsets in a stage of its words (wat = %0: chunk 2 g of word row t; wat2: chunk 2 g + 1) and activations (aat = %1), and zeroes the group sums and scales.</summary>
    private const string DeclareRegisters =
        ".reg .b32 xa<4>, nzl<4>, nwl<4>, nzh<4>, nwh<4>, r16, wat, wat2, aat; .reg .f32 scl<4>, sch<4>, pa<32>, fz; " +
        "mov.b32 wat, %0; xor.b32 wat2, %0, 16; mov.b32 aat, %1; mov.b32 r16, 0x2C002C00; mov.f32 fz, 0f00000000; " +
        "mov.f32 scl0, 0f00000000; mov.f32 scl1, 0f00000000; mov.f32 scl2, 0f00000000; mov.f32 scl3, 0f00000000; mov.f32 sch0, 0f00000000; mov.f32 sch1, 0f00000000; mov.f32 sch2, 0f00000000; mov.f32 sch3, 0f00000000; " +
        "mov.f32 pa0, 0f00000000; mov.f32 pa1, 0f00000000; mov.f32 pa2, 0f00000000; mov.f32 pa3, 0f00000000; mov.f32 pa4, 0f00000000; mov.f32 pa5, 0f00000000; mov.f32 pa6, 0f00000000; mov.f32 pa7, 0f00000000; mov.f32 pa8, 0f00000000; mov.f32 pa9, 0f00000000; mov.f32 pa10, 0f00000000; mov.f32 pa11, 0f00000000; mov.f32 pa12, 0f00000000; mov.f32 pa13, 0f00000000; mov.f32 pa14, 0f00000000; mov.f32 pa15, 0f00000000; mov.f32 pa16, 0f00000000; mov.f32 pa17, 0f00000000; mov.f32 pa18, 0f00000000; mov.f32 pa19, 0f00000000; mov.f32 pa20, 0f00000000; mov.f32 pa21, 0f00000000; mov.f32 pa22, 0f00000000; mov.f32 pa23, 0f00000000; mov.f32 pa24, 0f00000000; mov.f32 pa25, 0f00000000; mov.f32 pa26, 0f00000000; mov.f32 pa27, 0f00000000; mov.f32 pa28, 0f00000000; mov.f32 pa29, 0f00000000; mov.f32 pa30, 0f00000000; mov.f32 pa31, 0f00000000;";

    /// <summary>One unit (two k16 steps) of batch rows 0-7 into the group sums: the lane's 8 words (stage %0 + wat: columns 8 g .. 8 g + 3 of word row t, + wat2: 8 g + 4 .. 8 g + 7) dequantized to the exact (q - zero) into the A fragments of the 4 tiles (step 0 from the words' bytes 0 and 2, step 1 from bytes 1 and 3), the lane's activations (stage + aat: row g, both steps) as B, 8 mmas.</summary>
    private const string MmaUnit =
        "{ .reg .b32 w<8>, a0, a1, a2, a3, p0, p1, p2; " +
        "add.u32 p0, %0, wat; add.u32 p1, %0, wat2; add.u32 p2, %0, aat; " +
        "ld.shared.v4.b32 {w0,w1,w2,w3}, [p0]; ld.shared.v4.b32 {w4,w5,w6,w7}, [p1]; " +
        "ld.shared.v4.b32 {xa0,xa1,xa2,xa3}, [p2]; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa0,xa1}, {pa0,pa1,pa2,pa3}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa0,xa1}, {pa4,pa5,pa6,pa7}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa0,xa1}, {pa8,pa9,pa10,pa11}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa0,xa1}, {pa12,pa13,pa14,pa15}; " +
        "shr.b32 w0, w0, 8; shr.b32 w1, w1, 8; shr.b32 w2, w2, 8; shr.b32 w3, w3, 8; shr.b32 w4, w4, 8; shr.b32 w5, w5, 8; shr.b32 w6, w6, 8; shr.b32 w7, w7, 8; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa2,xa3}, {pa0,pa1,pa2,pa3}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa2,xa3}, {pa4,pa5,pa6,pa7}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa2,xa3}, {pa8,pa9,pa10,pa11}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa2,xa3}, {pa12,pa13,pa14,pa15}; " +
        "}";

    /// <summary>As <see cref="MmaUnit"/> for a group's first unit: its first step's mmas start the group sums from zero.</summary>
    private const string MmaUnitFirst =
        "{ .reg .b32 w<8>, a0, a1, a2, a3, p0, p1, p2; " +
        "add.u32 p0, %0, wat; add.u32 p1, %0, wat2; add.u32 p2, %0, aat; " +
        "ld.shared.v4.b32 {w0,w1,w2,w3}, [p0]; ld.shared.v4.b32 {w4,w5,w6,w7}, [p1]; " +
        "ld.shared.v4.b32 {xa0,xa1,xa2,xa3}, [p2]; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "shr.b32 w0, w0, 8; shr.b32 w1, w1, 8; shr.b32 w2, w2, 8; shr.b32 w3, w3, 8; shr.b32 w4, w4, 8; shr.b32 w5, w5, 8; shr.b32 w6, w6, 8; shr.b32 w7, w7, 8; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa2,xa3}, {pa0,pa1,pa2,pa3}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa2,xa3}, {pa4,pa5,pa6,pa7}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa2,xa3}, {pa8,pa9,pa10,pa11}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa2,xa3}, {pa12,pa13,pa14,pa15}; " +
        "}";

    /// <summary>As <see cref="MmaUnit"/> for batch rows 0-15: the same A fragments also times row g + 8's activations (stage + aat + 512), 16 mmas.</summary>
    private const string MmaUnit16 =
        "{ .reg .b32 w<8>, xb<4>, a0, a1, a2, a3, p0, p1, p2; " +
        "add.u32 p0, %0, wat; add.u32 p1, %0, wat2; add.u32 p2, %0, aat; " +
        "ld.shared.v4.b32 {w0,w1,w2,w3}, [p0]; ld.shared.v4.b32 {w4,w5,w6,w7}, [p1]; " +
        "ld.shared.v4.b32 {xa0,xa1,xa2,xa3}, [p2]; ld.shared.v4.b32 {xb0,xb1,xb2,xb3}, [p2+512]; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa0,xa1}, {pa0,pa1,pa2,pa3}; " +
        "" + DeviceMath.MmaF16F32 + "{pa16,pa17,pa18,pa19}, {a0,a1,a2,a3}, {xb0,xb1}, {pa16,pa17,pa18,pa19}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa0,xa1}, {pa4,pa5,pa6,pa7}; " +
        "" + DeviceMath.MmaF16F32 + "{pa20,pa21,pa22,pa23}, {a0,a1,a2,a3}, {xb0,xb1}, {pa20,pa21,pa22,pa23}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa0,xa1}, {pa8,pa9,pa10,pa11}; " +
        "" + DeviceMath.MmaF16F32 + "{pa24,pa25,pa26,pa27}, {a0,a1,a2,a3}, {xb0,xb1}, {pa24,pa25,pa26,pa27}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa0,xa1}, {pa12,pa13,pa14,pa15}; " +
        "" + DeviceMath.MmaF16F32 + "{pa28,pa29,pa30,pa31}, {a0,a1,a2,a3}, {xb0,xb1}, {pa28,pa29,pa30,pa31}; " +
        "shr.b32 w0, w0, 8; shr.b32 w1, w1, 8; shr.b32 w2, w2, 8; shr.b32 w3, w3, 8; shr.b32 w4, w4, 8; shr.b32 w5, w5, 8; shr.b32 w6, w6, 8; shr.b32 w7, w7, 8; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa2,xa3}, {pa0,pa1,pa2,pa3}; " +
        "" + DeviceMath.MmaF16F32 + "{pa16,pa17,pa18,pa19}, {a0,a1,a2,a3}, {xb2,xb3}, {pa16,pa17,pa18,pa19}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa2,xa3}, {pa4,pa5,pa6,pa7}; " +
        "" + DeviceMath.MmaF16F32 + "{pa20,pa21,pa22,pa23}, {a0,a1,a2,a3}, {xb2,xb3}, {pa20,pa21,pa22,pa23}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa2,xa3}, {pa8,pa9,pa10,pa11}; " +
        "" + DeviceMath.MmaF16F32 + "{pa24,pa25,pa26,pa27}, {a0,a1,a2,a3}, {xb2,xb3}, {pa24,pa25,pa26,pa27}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa2,xa3}, {pa12,pa13,pa14,pa15}; " +
        "" + DeviceMath.MmaF16F32 + "{pa28,pa29,pa30,pa31}, {a0,a1,a2,a3}, {xb2,xb3}, {pa28,pa29,pa30,pa31}; " +
        "}";

    /// <summary>As <see cref="MmaUnit16"/> for a group's first unit.</summary>
    private const string MmaUnitFirst16 =
        "{ .reg .b32 w<8>, xb<4>, a0, a1, a2, a3, p0, p1, p2; " +
        "add.u32 p0, %0, wat; add.u32 p1, %0, wat2; add.u32 p2, %0, aat; " +
        "ld.shared.v4.b32 {w0,w1,w2,w3}, [p0]; ld.shared.v4.b32 {w4,w5,w6,w7}, [p1]; " +
        "ld.shared.v4.b32 {xa0,xa1,xa2,xa3}, [p2]; ld.shared.v4.b32 {xb0,xb1,xb2,xb3}, [p2+512]; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "" + DeviceMath.MmaF16F32 + "{pa16,pa17,pa18,pa19}, {a0,a1,a2,a3}, {xb0,xb1}, {fz,fz,fz,fz}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "" + DeviceMath.MmaF16F32 + "{pa20,pa21,pa22,pa23}, {a0,a1,a2,a3}, {xb0,xb1}, {fz,fz,fz,fz}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "" + DeviceMath.MmaF16F32 + "{pa24,pa25,pa26,pa27}, {a0,a1,a2,a3}, {xb0,xb1}, {fz,fz,fz,fz}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa0,xa1}, {fz,fz,fz,fz}; " +
        "" + DeviceMath.MmaF16F32 + "{pa28,pa29,pa30,pa31}, {a0,a1,a2,a3}, {xb0,xb1}, {fz,fz,fz,fz}; " +
        "shr.b32 w0, w0, 8; shr.b32 w1, w1, 8; shr.b32 w2, w2, 8; shr.b32 w3, w3, 8; shr.b32 w4, w4, 8; shr.b32 w5, w5, 8; shr.b32 w6, w6, 8; shr.b32 w7, w7, 8; " +
        "lop3.b32 a0, w0, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w1, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w0, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w1, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl0; add.rn.f16x2 a1, a1, nzh0; fma.rn.f16x2 a2, a2, r16, nwl0; fma.rn.f16x2 a3, a3, r16, nwh0; " +
        "" + DeviceMath.MmaF16F32 + "{pa0,pa1,pa2,pa3}, {a0,a1,a2,a3}, {xa2,xa3}, {pa0,pa1,pa2,pa3}; " +
        "" + DeviceMath.MmaF16F32 + "{pa16,pa17,pa18,pa19}, {a0,a1,a2,a3}, {xb2,xb3}, {pa16,pa17,pa18,pa19}; " +
        "lop3.b32 a0, w2, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w3, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w2, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w3, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl1; add.rn.f16x2 a1, a1, nzh1; fma.rn.f16x2 a2, a2, r16, nwl1; fma.rn.f16x2 a3, a3, r16, nwh1; " +
        "" + DeviceMath.MmaF16F32 + "{pa4,pa5,pa6,pa7}, {a0,a1,a2,a3}, {xa2,xa3}, {pa4,pa5,pa6,pa7}; " +
        "" + DeviceMath.MmaF16F32 + "{pa20,pa21,pa22,pa23}, {a0,a1,a2,a3}, {xb2,xb3}, {pa20,pa21,pa22,pa23}; " +
        "lop3.b32 a0, w4, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w5, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w4, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w5, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl2; add.rn.f16x2 a1, a1, nzh2; fma.rn.f16x2 a2, a2, r16, nwl2; fma.rn.f16x2 a3, a3, r16, nwh2; " +
        "" + DeviceMath.MmaF16F32 + "{pa8,pa9,pa10,pa11}, {a0,a1,a2,a3}, {xa2,xa3}, {pa8,pa9,pa10,pa11}; " +
        "" + DeviceMath.MmaF16F32 + "{pa24,pa25,pa26,pa27}, {a0,a1,a2,a3}, {xb2,xb3}, {pa24,pa25,pa26,pa27}; " +
        "lop3.b32 a0, w6, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a1, w7, 0x000F000F, 0x64006400, 0xEA; lop3.b32 a2, w6, 0x00F000F0, 0x64006400, 0xEA; lop3.b32 a3, w7, 0x00F000F0, 0x64006400, 0xEA; " +
        "add.rn.f16x2 a0, a0, nzl3; add.rn.f16x2 a1, a1, nzh3; fma.rn.f16x2 a2, a2, r16, nwl3; fma.rn.f16x2 a3, a3, r16, nwh3; " +
        "" + DeviceMath.MmaF16F32 + "{pa12,pa13,pa14,pa15}, {a0,a1,a2,a3}, {xa2,xa3}, {pa12,pa13,pa14,pa15}; " +
        "" + DeviceMath.MmaF16F32 + "{pa28,pa29,pa30,pa31}, {a0,a1,a2,a3}, {xb2,xb3}, {pa28,pa29,pa30,pa31}; " +
        "}";

    /// <summary>Adds batch rows 0-7 of the group sums times their columns' scales to the warp's sums in the reduction tile (%0: the lane's row 2 t, columns 8 g .. 8 g + 3, its 16-byte chunk placed by TileIndex; q, its offset in the shared allocation xor 16 (ReduceOffset is a multiple of 32): columns 8 g + 4 .. 8 g + 7; row 2 t + 1 is 256 bytes on). No bank conflicts: each quarter-warp's 16-byte accesses hit 8 bank quads. All loads before the stores (ptxas does not move a load through one address register above a store through the other). C rows g and g + 8 of tile i are columns 8 g + 2 i and 8 g + 2 i + 1, C columns 2 t and 2 t + 1 rows.</summary>
    private const string FlushLow =
        "{ .reg .f32 c<16>; .reg .b32 q, s; mov.u32 s, __shared_alloca0; sub.u32 q, %0, s; xor.b32 q, q, 16; add.u32 q, q, s; " +
        "ld.shared.v4.f32 {c0, c1, c2, c3}, [%0+0]; ld.shared.v4.f32 {c4, c5, c6, c7}, [q+0]; ld.shared.v4.f32 {c8, c9, c10, c11}, [%0+256]; ld.shared.v4.f32 {c12, c13, c14, c15}, [q+256]; " +
        "fma.rn.f32 c0, pa0, scl0, c0; fma.rn.f32 c1, pa2, sch0, c1; fma.rn.f32 c2, pa4, scl1, c2; fma.rn.f32 c3, pa6, sch1, c3; fma.rn.f32 c4, pa8, scl2, c4; fma.rn.f32 c5, pa10, sch2, c5; fma.rn.f32 c6, pa12, scl3, c6; fma.rn.f32 c7, pa14, sch3, c7; " +
        "fma.rn.f32 c8, pa1, scl0, c8; fma.rn.f32 c9, pa3, sch0, c9; fma.rn.f32 c10, pa5, scl1, c10; fma.rn.f32 c11, pa7, sch1, c11; fma.rn.f32 c12, pa9, scl2, c12; fma.rn.f32 c13, pa11, sch2, c13; fma.rn.f32 c14, pa13, scl3, c14; fma.rn.f32 c15, pa15, sch3, c15; " +
        "st.shared.v4.f32 [%0+0], {c0, c1, c2, c3}; st.shared.v4.f32 [q+0], {c4, c5, c6, c7}; st.shared.v4.f32 [%0+256], {c8, c9, c10, c11}; st.shared.v4.f32 [q+256], {c12, c13, c14, c15}; " +
        "}";

    /// <summary>The same for batch rows 8-15 (2048 bytes on).</summary>
    private const string FlushHigh =
        "{ .reg .f32 c<16>; .reg .b32 q, s; mov.u32 s, __shared_alloca0; sub.u32 q, %0, s; xor.b32 q, q, 16; add.u32 q, q, s; " +
        "ld.shared.v4.f32 {c0, c1, c2, c3}, [%0+2048]; ld.shared.v4.f32 {c4, c5, c6, c7}, [q+2048]; ld.shared.v4.f32 {c8, c9, c10, c11}, [%0+2304]; ld.shared.v4.f32 {c12, c13, c14, c15}, [q+2304]; " +
        "fma.rn.f32 c0, pa16, scl0, c0; fma.rn.f32 c1, pa18, sch0, c1; fma.rn.f32 c2, pa20, scl1, c2; fma.rn.f32 c3, pa22, sch1, c3; fma.rn.f32 c4, pa24, scl2, c4; fma.rn.f32 c5, pa26, sch2, c5; fma.rn.f32 c6, pa28, scl3, c6; fma.rn.f32 c7, pa30, sch3, c7; " +
        "fma.rn.f32 c8, pa17, scl0, c8; fma.rn.f32 c9, pa19, sch0, c9; fma.rn.f32 c10, pa21, scl1, c10; fma.rn.f32 c11, pa23, sch1, c11; fma.rn.f32 c12, pa25, scl2, c12; fma.rn.f32 c13, pa27, sch2, c13; fma.rn.f32 c14, pa29, scl3, c14; fma.rn.f32 c15, pa31, sch3, c15; " +
        "st.shared.v4.f32 [%0+2048], {c0, c1, c2, c3}; st.shared.v4.f32 [q+2048], {c4, c5, c6, c7}; st.shared.v4.f32 [%0+2304], {c8, c9, c10, c11}; st.shared.v4.f32 [q+2304], {c12, c13, c14, c15}; " +
        "}";

    /// <summary>Zeroes the lane's elements of batch rows 0-7 in the warp's area of the reduction tile (%0 and q as in <see cref="FlushLow"/>) and the group sums.</summary>
    private const string ZeroLow =
        "{ .reg .b32 q, s; mov.u32 s, __shared_alloca0; sub.u32 q, %0, s; xor.b32 q, q, 16; add.u32 q, q, s; " +
        "st.shared.v4.f32 [%0+0], {fz, fz, fz, fz}; st.shared.v4.f32 [q+0], {fz, fz, fz, fz}; " +
        "st.shared.v4.f32 [%0+256], {fz, fz, fz, fz}; st.shared.v4.f32 [q+256], {fz, fz, fz, fz}; } " +
        "mov.f32 pa0, 0f00000000; mov.f32 pa1, 0f00000000; mov.f32 pa2, 0f00000000; mov.f32 pa3, 0f00000000; mov.f32 pa4, 0f00000000; mov.f32 pa5, 0f00000000; mov.f32 pa6, 0f00000000; mov.f32 pa7, 0f00000000; mov.f32 pa8, 0f00000000; mov.f32 pa9, 0f00000000; mov.f32 pa10, 0f00000000; mov.f32 pa11, 0f00000000; mov.f32 pa12, 0f00000000; mov.f32 pa13, 0f00000000; mov.f32 pa14, 0f00000000; mov.f32 pa15, 0f00000000;";

    /// <summary>The same for batch rows 8-15.</summary>
    private const string ZeroHigh =
        "{ .reg .b32 q, s; mov.u32 s, __shared_alloca0; sub.u32 q, %0, s; xor.b32 q, q, 16; add.u32 q, q, s; " +
        "st.shared.v4.f32 [%0+2048], {fz, fz, fz, fz}; st.shared.v4.f32 [q+2048], {fz, fz, fz, fz}; " +
        "st.shared.v4.f32 [%0+2304], {fz, fz, fz, fz}; st.shared.v4.f32 [q+2304], {fz, fz, fz, fz}; } " +
        "mov.f32 pa16, 0f00000000; mov.f32 pa17, 0f00000000; mov.f32 pa18, 0f00000000; mov.f32 pa19, 0f00000000; mov.f32 pa20, 0f00000000; mov.f32 pa21, 0f00000000; mov.f32 pa22, 0f00000000; mov.f32 pa23, 0f00000000; mov.f32 pa24, 0f00000000; mov.f32 pa25, 0f00000000; mov.f32 pa26, 0f00000000; mov.f32 pa27, 0f00000000; mov.f32 pa28, 0f00000000; mov.f32 pa29, 0f00000000; mov.f32 pa30, 0f00000000; mov.f32 pa31, 0f00000000;";

    /// <summary>A group's constants from the stage's copy: the lane's 8 fp16 scales (%0 = constants + 16 g) as fp32, and -(1024 + z), -(64 + z) from its zero word (%1 = constants + 128 + 4 g; %2 the v1 zero offset in every byte). The zero word's even nibbles (columns 8 g + 2 i) go to the bytes of x, the odd ones (8 g + 2 i + 1) to those of y, the offset added to each byte (z + offset &lt;= 16, no carry); prmt puts byte i of x or y under 0xE4 in both fp16 halves, which is 0xE400 + z = -(1024 + z), and times 16 plus 0x93F29400 that is 0xD400 + 16 z = -(64 + z) in both halves (the low half's carry into the high one is in the constant). Checked for every zero word nibble and both offsets against bfe and mad.</summary>
    private const string SetGroup =
        "{ .reg .b32 s<4>, zw, x, y; .reg .b16 l, h; " +
        "ld.shared.v4.b32 {s0,s1,s2,s3}, [%0]; ld.shared.b32 zw, [%1]; " +
        "mov.b32 {l, h}, s0; cvt.f32.f16 scl0, l; cvt.f32.f16 sch0, h; " +
        "mov.b32 {l, h}, s1; cvt.f32.f16 scl1, l; cvt.f32.f16 sch1, h; " +
        "mov.b32 {l, h}, s2; cvt.f32.f16 scl2, l; cvt.f32.f16 sch2, h; " +
        "mov.b32 {l, h}, s3; cvt.f32.f16 scl3, l; cvt.f32.f16 sch3, h; " +
        "and.b32 x, zw, 0x0F0F0F0F; add.u32 x, x, %2; shr.b32 y, zw, 4; and.b32 y, y, 0x0F0F0F0F; add.u32 y, y, %2; " +
        "prmt.b32 nzl0, x, 0xE4E4E4E4, 0x4040; mad.lo.u32 nwl0, nzl0, 16, 0x93F29400; " +
        "prmt.b32 nzh0, y, 0xE4E4E4E4, 0x4040; mad.lo.u32 nwh0, nzh0, 16, 0x93F29400; " +
        "prmt.b32 nzl1, x, 0xE4E4E4E4, 0x4141; mad.lo.u32 nwl1, nzl1, 16, 0x93F29400; " +
        "prmt.b32 nzh1, y, 0xE4E4E4E4, 0x4141; mad.lo.u32 nwh1, nzh1, 16, 0x93F29400; " +
        "prmt.b32 nzl2, x, 0xE4E4E4E4, 0x4242; mad.lo.u32 nwl2, nzl2, 16, 0x93F29400; " +
        "prmt.b32 nzh2, y, 0xE4E4E4E4, 0x4242; mad.lo.u32 nwh2, nzh2, 16, 0x93F29400; " +
        "prmt.b32 nzl3, x, 0xE4E4E4E4, 0x4343; mad.lo.u32 nwl3, nzl3, 16, 0x93F29400; " +
        "prmt.b32 nzh3, y, 0xE4E4E4E4, 0x4343; mad.lo.u32 nwh3, nzh3, 16, 0x93F29400; " +
        "}";

}

/// <summary>A block's range of units [First, End) and one of its warps, which computes its slice of each segment (see <see cref="GptqSmallBatchKernels.SliceStart"/>).</summary>
internal struct WarpRange
{
    public int First;
    public int End;
    public int Warp;
}

/// <summary>
/// A warp's copy side: the unit it copies next, that unit's column block (in the launch's numbering over all parts),
/// whether the group's constants must be copied with it (the warp's first unit, or a new group, slice or column block),
/// how many units (this one included) follow linearly before the next such start, and the lane's source addresses,
/// moved by additions between starts. A run never spans two parts (a column block belongs to one), so the run start
/// resolves the part once and leaves what the units need of it (its out-features, the weight stride) in the cursor.
/// </summary>
internal struct CopyCursor
{
    public int Unit;
    public int Block;
    public int Group;
    public int NewGroup;

    /// <summary>Units from this one to the end of its run: the next unit is in the same slice, column block and group, at the next addresses, unless this is the run's last.</summary>
    public int Left;

    /// <summary>End of the warp's slice of the current segment (int.MaxValue past the block's range).</summary>
    public int SliceEnd;

    /// <summary>The lane's 16 weight bytes of the unit: word row 4 step + lane / 16, columns 64 block + 4 (lane % 16) ...</summary>
    public long Weights;

    /// <summary>The lane's 16 activation bytes of the unit: row lane / 4, storage positions 8 (lane % 4) .. + 7 (4 of each k16 step).</summary>
    public long Activations;

    /// <summary>Non-zero while the lane's weight chunk lies inside the layer (the last column block may be partial).</summary>
    public int WeightValid;

    /// <summary>Out-features of the part owning <see cref="Block"/>: its word rows' length, so the weights' stride.</summary>
    public int OutFeatures;

    /// <summary>
    /// floor((2^32 - 1) / GroupUnits), once per thread: for 0 &lt;= step &lt; 2^32, q = umulhi(step, m) is step / GroupUnits
    /// or one less (m &gt;= 2^32 / d - 1, so step m / 2^32 &gt; step / d - 1; m &lt; 2^32 / d, so q &lt;= step / d), and one
    /// compare of the remainder corrects it. Replaces a signed division (about 25 instructions) per run.
    /// </summary>
    public static uint GroupMagic(SmallBatchArgs a) => 0xFFFFFFFFu / (uint)a.GroupUnits;

    /// <summary>The cursor of the warp's first unit of its range for lane <paramref name="lane"/> (the range's end when it has none).</summary>
    public static CopyCursor First(WarpRange r, SmallBatchArgs a, int lane, uint groupMagic)
    {
        var c = default(CopyCursor);
        c.Block = r.First / a.KUnits;
        c.SlicedFrom(r, a, r.First);
        return c.Start(a, lane, c.Unit - (c.Block * a.KUnits), groupMagic);
    }

    /// <summary>The warp's next unit: the next one of the run, else the first of the next run (a new group, or the warp's slice of the next segment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public CopyCursor Next(SmallBatchArgs a, WarpRange r, int lane, uint groupMagic)
    {
        var c = this;
        c.Unit++;
        c.Left--;
        c.NewGroup = 0;
        c.Weights += 16L * c.OutFeatures;
        c.Activations += 64;
        if (c.Left == 0)
        {
            // Placed afresh, once per run: at the slice's end, the warp's slice of the next column block's segment.
            if (c.Unit >= c.SliceEnd)
            {
                c.Block++;
                c.SlicedFrom(r, a, c.Block * a.KUnits);
            }

            int step = c.Unit - (c.Block * a.KUnits);
            while (step >= a.KUnits)
            {
                step -= a.KUnits;
                c.Block++;
            }

            return c.Start(a, lane, step, groupMagic);
        }

        return c;
    }

    /// <summary>
    /// Moves to the warp's slice of the segment that starts at <paramref name="segment"/> (in column block
    /// <see cref="Block"/>), or of the first later one where the slice is not empty; past the range, to the units after
    /// it, one run to the end of the layer (copies there are issued but read nothing).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SlicedFrom(WarpRange r, SmallBatchArgs a, int segment)
    {
        while (segment < r.End)
        {
            int segmentEnd = (Block + 1) * a.KUnits;
            segmentEnd = segmentEnd < r.End ? segmentEnd : r.End;
            Unit = GptqSmallBatchKernels.SliceStart(segment, segmentEnd - segment, r.Warp);
            SliceEnd = GptqSmallBatchKernels.SliceStart(segment, segmentEnd - segment, r.Warp + 1);
            if (Unit < SliceEnd)
            {
                return;
            }

            Block++;
            segment = Block * a.KUnits;
        }

        Unit = segment;
        SliceEnd = int.MaxValue;
    }

    /// <summary>Starts a run at step <paramref name="step"/> of the cursor's column block: its part, group, run length, the lane's source addresses.</summary>
    private CopyCursor Start(SmallBatchArgs a, int lane, int step, uint groupMagic)
    {
        var c = this;
        c.Group = (int)(((ulong)(uint)step * groupMagic) >> 32);
        int inGroup = step - (c.Group * a.GroupUnits);
        if (inGroup >= a.GroupUnits)
        {
            c.Group++;
            inGroup -= a.GroupUnits;
        }

        int sliceLeft = c.SliceEnd - c.Unit;
        int blockLeft = a.KUnits - step;
        int groupLeft = a.GroupUnits - inGroup;
        int left = sliceLeft < blockLeft ? sliceLeft : blockLeft;
        c.Left = left < groupLeft ? left : groupLeft;
        c.NewGroup = 1;

        // The part owning the column block: one copy of the placement per part, so part 0 (a single layer: parts 1
        // and 2 start past the end) reads its addresses straight from the parameters as before, behind one
        // warp-uniform compare.
        if (c.Block < a.FirstBlock1)
        {
            c.Place(a.Layer, lane, step, c.Block, a.Layer.InFeatures);
        }
        else if (c.Block < a.FirstBlock2)
        {
            c.Place(a.Layer1, lane, step, c.Block - a.FirstBlock1, a.Layer.InFeatures);
        }
        else
        {
            c.Place(a.Layer2, lane, step, c.Block - a.FirstBlock2, a.Layer.InFeatures);
        }

        return c;
    }

    /// <summary>The lane's source addresses at step <paramref name="step"/> of column block <paramref name="partBlock"/> of <paramref name="layer"/> (the part's own numbering).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Place(GptqGemvArgs layer, int lane, int step, int partBlock, int inFeatures)
    {
        // Word and element indices fit in 32 bits (in / 8 x out <= MaxUnits x 256 words; 16 rows x in halves).
        OutFeatures = layer.OutFeatures;
        int column = (partBlock * GptqSmallBatchKernels.BlockColumns) + ((lane & 15) * 4);
        Weights = layer.QWeightAddress + ((long)((((4 * step) + (lane >> 4)) * layer.OutFeatures) + column) * 4);
        WeightValid = column < layer.OutFeatures ? 1 : 0;
        Activations = layer.InputAddress + ((long)(((lane >> 2) * inFeatures) + (GptqSmallBatchKernels.UnitInputs * step) + (8 * (lane & 3))) * 2);
    }
}

/// <summary>A lane's constants on the copy side: where its copies go within a stage, and whether its rows exist.</summary>
internal struct CopyLane
{
    /// <summary>Stage offset of the lane's first weight chunk: word row lane / 16, chunk lane % 16 (swizzled).</summary>
    public uint WeightDst;

    /// <summary>Stage offset of the lane's activations of row lane / 4 (those of row lane / 4 + 8 are 512 bytes on).</summary>
    public uint ActivationDst;

    /// <summary>Whether the lane's rows (lane / 4 and lane / 4 + 8) exist; other lanes copy zeros.</summary>
    public bool RowValid;
    public bool HighRowValid;

    public static CopyLane Of(SmallBatchArgs a, int lane)
    {
        int wordRow = lane >> 4;
        int row = lane >> 2;
        var l = default(CopyLane);
        l.WeightDst = (uint)((wordRow * 256) + (GptqSmallBatchKernels.WeightChunk(wordRow, lane & 15) * 16));
        l.ActivationDst = (uint)(GptqSmallBatchKernels.ActivationOffset + (16 * lane));
        l.RowValid = row < a.Layer.Rows;
        l.HighRowValid = row + 8 < a.Layer.Rows;
        return l;
    }
}
