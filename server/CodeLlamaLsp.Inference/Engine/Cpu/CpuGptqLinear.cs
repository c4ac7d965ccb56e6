// A GPTQ-quantized linear on the CPU. At load time the rows are put in group order (exllama's trick for
// act-order checkpoints: sort input rows by g_idx once and permute the activations instead of gathering a
// scale per row), each group padded to whole 32-bit words; checkpoints already in that order are read in
// place from the memory-mapped file. The kernel then walks one strip of output columns per work item,
// unpacking one 32-bit word of Vector<int>.Count columns at a time and reusing it for up to four tokens.
using System.Numerics;
using System.Runtime.InteropServices;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cpu;

/// <summary>y = x W (+ bias) with W[k, n] = scale[g, n] * (q[k, n] - zero[g, n]), g = g_idx[k].</summary>
internal sealed class CpuGptqLinear : PreparedLinear
{
    private const int TokensPerTile = 4;

    private readonly int _bits;
    private readonly int _pack; // quantized values per 32-bit word
    private readonly int _groups;
    private readonly ReadOnlyMemory<byte> _qweight; // I32 [packedRows, out], rows in group order
    private readonly int _slots; // packedRows * pack: inputs after sorting and padding
    private readonly int[]? _slotToInput; // [slots]: input row per slot, -1 for padding; null when slots are the inputs
    private readonly int[] _groupFirstWord; // [groups + 1]: packed-row range of each group
    private readonly float[] _scales; // [groups, out]
    private readonly float[] _zeros; // [groups, out], the true zero (v1 stores zero - 1)
    private readonly float[]? _bias; // [out], null when absent or all zero
    private float[] _permuted = []; // [rows, slots] scratch for sorted activations

    private CpuGptqLinear(GptqLinearWeights w, ReadOnlyMemory<byte> qweight, int slots, int[]? slotToInput, int[] groupFirstWord, float[] scales, float[] zeros, float[]? bias)
        : base(w.Name, w.InFeatures, w.OutFeatures)
    {
        _bits = w.Bits;
        _pack = 32 / w.Bits;
        _groups = groupFirstWord.Length - 1;
        _qweight = qweight;
        _slots = slots;
        _slotToInput = slotToInput;
        _groupFirstWord = groupFirstWord;
        _scales = scales;
        _zeros = zeros;
        _bias = bias;
    }

    public override long SizeInBytes => _qweight.Length + ((_scales.LongLength + _zeros.LongLength) * 4);

    public static CpuGptqLinear Prepare(GptqLinearWeights w)
    {
        var layout = GptqLayout.Validate(w);
        int inF = w.InFeatures;
        int outF = w.OutFeatures;
        int pack = 32 / w.Bits;

        // Sort input rows by group (stable), then lay each group out on whole words.
        var groupOfRow = layout.GroupOfRow;
        var rowsPerGroup = new int[layout.Groups];
        foreach (var g in groupOfRow)
        {
            rowsPerGroup[g]++;
        }

        var groupFirstWord = new int[layout.Groups + 1];
        for (int g = 0; g < layout.Groups; g++)
        {
            groupFirstWord[g + 1] = groupFirstWord[g] + ((rowsPerGroup[g] + pack - 1) / pack);
        }

        int slots = groupFirstWord[layout.Groups] * pack;
        var slotToInput = new int[slots];
        Array.Fill(slotToInput, -1);
        var nextSlot = new int[layout.Groups];
        for (int g = 0; g < layout.Groups; g++)
        {
            nextSlot[g] = groupFirstWord[g] * pack;
        }

        for (int k = 0; k < inF; k++)
        {
            slotToInput[nextSlot[groupOfRow[k]]++] = k;
        }

        bool inPlace = slots == inF && slotToInput.AsSpan().SequenceEqual(Enumerable.Range(0, inF).ToArray());
        ReadOnlyMemory<byte> qweight = inPlace ? w.QWeight.Data : Repack(w.QWeight.As<int>(), slotToInput, w.Bits, outF);

        return new CpuGptqLinear(w, qweight, slots, inPlace ? null : slotToInput, groupFirstWord, layout.Scales, layout.Zeros, layout.Bias);
    }

    public void Forward(float[] x, float[] y, int rows)
    {
        int inF = InFeatures;
        float[] xs = x;
        if (_slotToInput != null)
        {
            if (_permuted.Length < rows * _slots)
            {
                _permuted = new float[rows * _slots];
            }

            xs = _permuted;
            for (int t = 0; t < rows; t++)
            {
                for (int s = 0; s < _slots; s++)
                {
                    int k = _slotToInput[s];
                    xs[(t * _slots) + s] = k < 0 ? 0f : x[(t * inF) + k];
                }
            }
        }

        int width = Vector<float>.Count;
        int vectorStrips = OutFeatures / width;
        bool tail = OutFeatures % width != 0;
        Parallel.For(0, vectorStrips + (tail ? 1 : 0), strip =>
        {
            var q = MemoryMarshal.Cast<byte, int>(_qweight.Span);
            if (strip == vectorStrips)
            {
                for (int col = vectorStrips * width; col < OutFeatures; col++)
                {
                    for (int t = 0; t < rows; t++)
                    {
                        y[(t * OutFeatures) + col] = ScalarColumn(q, xs, t, col);
                    }
                }

                return;
            }

            int c = strip * width;
            int t0 = 0;
            for (; t0 + TokensPerTile <= rows; t0 += TokensPerTile)
            {
                StripFourTokens(q, xs, y, c, t0);
            }

            for (; t0 < rows; t0++)
            {
                StripOneToken(q, xs, y, c, t0);
            }
        });
    }

    private void StripOneToken(ReadOnlySpan<int> q, float[] xs, float[] y, int col, int t)
    {
        int outF = OutFeatures;
        var mask = new Vector<int>((1 << _bits) - 1);
        var total = _bias != null ? new Vector<float>(_bias.AsSpan(col)) : Vector<float>.Zero;
        var x = xs.AsSpan(t * _slots, _slots);
        for (int g = 0; g < _groups; g++)
        {
            var zero = new Vector<float>(_zeros.AsSpan((g * outF) + col));
            var acc = Vector<float>.Zero;
            for (int w = _groupFirstWord[g]; w < _groupFirstWord[g + 1]; w++)
            {
                var word = new Vector<int>(q.Slice((w * outF) + col));
                int k = w * _pack;
                for (int j = 0; j < _pack; j++)
                {
                    var level = Vector.ConvertToSingle(Vector.BitwiseAnd(Vector.ShiftRightLogical(word, j * _bits), mask)) - zero;
                    acc += level * x[k + j];
                }
            }

            total += new Vector<float>(_scales.AsSpan((g * outF) + col)) * acc;
        }

        total.CopyTo(y.AsSpan((t * outF) + col));
    }

    private void StripFourTokens(ReadOnlySpan<int> q, float[] xs, float[] y, int col, int t0)
    {
        int outF = OutFeatures;
        int slots = _slots;
        var mask = new Vector<int>((1 << _bits) - 1);
        var bias = _bias != null ? new Vector<float>(_bias.AsSpan(col)) : Vector<float>.Zero;
        Vector<float> total0 = bias, total1 = bias, total2 = bias, total3 = bias;
        var x0 = xs.AsSpan(t0 * slots, slots);
        var x1 = xs.AsSpan((t0 + 1) * slots, slots);
        var x2 = xs.AsSpan((t0 + 2) * slots, slots);
        var x3 = xs.AsSpan((t0 + 3) * slots, slots);
        for (int g = 0; g < _groups; g++)
        {
            var zero = new Vector<float>(_zeros.AsSpan((g * outF) + col));
            Vector<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
            for (int w = _groupFirstWord[g]; w < _groupFirstWord[g + 1]; w++)
            {
                var word = new Vector<int>(q.Slice((w * outF) + col));
                int k = w * _pack;
                for (int j = 0; j < _pack; j++)
                {
                    var level = Vector.ConvertToSingle(Vector.BitwiseAnd(Vector.ShiftRightLogical(word, j * _bits), mask)) - zero;
                    acc0 += level * x0[k + j];
                    acc1 += level * x1[k + j];
                    acc2 += level * x2[k + j];
                    acc3 += level * x3[k + j];
                }
            }

            var scale = new Vector<float>(_scales.AsSpan((g * outF) + col));
            total0 += scale * acc0;
            total1 += scale * acc1;
            total2 += scale * acc2;
            total3 += scale * acc3;
        }

        total0.CopyTo(y.AsSpan((t0 * outF) + col));
        total1.CopyTo(y.AsSpan(((t0 + 1) * outF) + col));
        total2.CopyTo(y.AsSpan(((t0 + 2) * outF) + col));
        total3.CopyTo(y.AsSpan(((t0 + 3) * outF) + col));
    }

    private float ScalarColumn(ReadOnlySpan<int> q, float[] xs, int t, int col)
    {
        int outF = OutFeatures;
        int mask = (1 << _bits) - 1;
        float total = _bias?[col] ?? 0f;
        for (int g = 0; g < _groups; g++)
        {
            float zero = _zeros[(g * outF) + col];
            float acc = 0f;
            for (int w = _groupFirstWord[g]; w < _groupFirstWord[g + 1]; w++)
            {
                uint word = (uint)q[(w * outF) + col];
                for (int j = 0; j < _pack; j++)
                {
                    acc += (((word >> (j * _bits)) & mask) - zero) * xs[(t * _slots) + (w * _pack) + j];
                }
            }

            total += _scales[(g * outF) + col] * acc;
        }

        return total;
    }

    /// <summary>Re-packs qweight so that slot s holds original input row slotToInput[s] (zero for padding).</summary>
    private static byte[] Repack(ReadOnlySpan<int> qweight, int[] slotToInput, int bits, int outF)
    {
        int pack = 32 / bits;
        uint mask = (1u << bits) - 1;
        var packed = new int[slotToInput.Length / pack * outF];
        for (int s = 0; s < slotToInput.Length; s++)
        {
            int k = slotToInput[s];
            if (k < 0)
            {
                continue;
            }

            int srcRow = (k / pack) * outF;
            int srcShift = bits * (k % pack);
            int dstRow = (s / pack) * outF;
            int dstShift = bits * (s % pack);
            for (int n = 0; n < outF; n++)
            {
                uint value = ((uint)qweight[srcRow + n] >> srcShift) & mask;
                packed[dstRow + n] |= (int)(value << dstShift);
            }
        }

        return MemoryMarshal.AsBytes(packed.AsSpan()).ToArray();
    }
}
