// Where an activation element lands in the fp16 input buffer of a linear layer. GPTQ kernels read the
// input as half2 pairs that line up with the magic-number dequantization of one packed word, so the
// producers (RMSNorm, attention, SiLU) write each element straight to its slot instead of a separate pass.
using System.Runtime.CompilerServices;
using ILGPU;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// Layout of a linear layer's fp16 input row. Bits 16 means natural order (dense weights). Bits 4 or 8 means
/// GPTQ order: rows are first permuted to the act-order sorted order (sorted index = InversePermutation[k]),
/// then each packed word of rpw = 32/bits rows is stored as rpw/2 half2 pairs, pair j holding rows (j, j + rpw/2):
/// exactly the two values that <c>(word &gt;&gt; bits*j) &amp; mask</c> extracts into one half2.
/// </summary>
internal static class ActivationLayout
{
    /// <summary>Index (in fp16 elements) of input feature <paramref name="k"/> within one row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HalfIndex(int k, int bits, ArrayView<int> inversePermutation, int hasPermutation) =>
        HalfIndexOfSorted(bits != 16 && hasPermutation != 0 ? inversePermutation[k] : k, bits);

    /// <summary>
    /// Index (in fp16 elements) within one row of the feature at act-order position <paramref name="sorted"/>: the
    /// arithmetic of <see cref="HalfIndexHost"/> by masks and a shift (<see cref="SlotMasks"/>), since the only GPTQ widths
    /// (4 and 8 bits) pack a power of two of rows per word. Integer divisions by a run-time width cost a producer ~20
    /// instructions each, three per element, on its critical path (the split-row RMSNorm computed 36 of them before its
    /// first store).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HalfIndexOfSorted(int sorted, int bits) => HalfIndexOfSorted(sorted, SlotMasks.Of(bits));

    /// <summary>
    /// The slot as one branch-free expression of masks that depend on the layout only (<see cref="SlotMasks"/>): a kernel
    /// that places many elements in one layout makes the masks once and pays four logic operations an element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HalfIndexOfSorted(int sorted, SlotMasks masks) =>
        (sorted & masks.Word) | ((sorted & masks.Pair) << 1) | ((sorted >> masks.LaneShift) & masks.Lane);

    /// <summary>
    /// Writes input feature <paramref name="k"/> of row <paramref name="row"/> (row width <paramref name="width"/>) into
    /// a consumer's fp16 input buffer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(ArrayView<ushort> output, long row, int width, int k, float value, InputLayoutArgs layout)
    {
        int at = HalfIndex(k, layout.Bits, layout.InversePermutation, layout.HasPermutation);
        output[(row * width) + at] = (ushort)DeviceMath.FloatToHalfBits(value);
    }

    /// <summary>Host-side mirror of <see cref="HalfIndex"/> for tests and uploads.</summary>
    public static int HalfIndexHost(int k, int bits, int[]? inversePermutation)
    {
        if (bits == 16)
        {
            return k;
        }

        int sorted = inversePermutation != null ? inversePermutation[k] : k;
        int rowsPerWord = 32 / bits;
        int pairs = rowsPerWord / 2;
        int word = sorted / rowsPerWord;
        int r = sorted - (word * rowsPerWord);
        return (((word * pairs) + (r % pairs)) * 2) + (r / pairs);
    }
}

/// <summary>What a producer kernel needs to write a linear layer's input: its layout and permutation.</summary>
internal struct InputLayoutArgs
{
    /// <summary>4 or 8 for GPTQ, 16 for natural order.</summary>
    public int Bits;

    /// <summary>Non-zero when <see cref="InversePermutation"/> holds the act-order map.</summary>
    public int HasPermutation;

    /// <summary>[in]: sorted position of original input feature k (length 1 when unused).</summary>
    public ArrayView<int> InversePermutation;
}

/// <summary>
/// A layout's slot arithmetic (<see cref="ActivationLayout.HalfIndexOfSorted(int, SlotMasks)"/>): the sorted position's
/// bits above a packed word stay (the word's rpw slots are the word's rpw rows); within the word, row r = lane * pairs +
/// pair goes to slot 2 * pair + lane. Natural order keeps every bit in <see cref="Word"/>.
/// </summary>
internal struct SlotMasks
{
    /// <summary>Bits of the packed word's first row: ~(rpw - 1), all ones in natural order.</summary>
    public int Word;

    /// <summary>The pair within the word: pairs - 1 (0 in natural order).</summary>
    public int Pair;

    /// <summary>log2(pairs): the row's bit that selects the pair's second lane.</summary>
    public int LaneShift;

    /// <summary>1 for GPTQ, 0 in natural order.</summary>
    public int Lane;

    /// <summary>The masks of a layout of <paramref name="bits"/> (4 or 8 for GPTQ, 16 for natural order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SlotMasks Of(int bits)
    {
        // rpw = 32 / bits rows per word: 8 at 4 bits (pairs 4), 4 at 8 bits (pairs 2).
        int pairShift = bits == 4 ? 2 : 1;
        bool natural = bits == 16;
        return new()
        {
            Word = natural ? -1 : -(2 << pairShift),
            Pair = natural ? 0 : (1 << pairShift) - 1,
            LaneShift = pairShift,
            Lane = natural ? 0 : 1,
        };
    }
}
