// Load-time layout of GPTQ layers for the CUDA kernels: validation, act-order resolution (rows sorted by group
// once, with the inverse permutation kept for the activations, as exllama does), and column concatenation so
// q/k/v and gate/up run as one GEMV each. Nothing is copied here: the device tensors are described as HostTensors
// whose writers produce any range of rows straight from the memory-mapped checkpoint into upload staging.
using System.Numerics;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>A GPTQ layer (or several sharing an input, side by side) in the layout the CUDA GEMV reads: rows sorted by group.</summary>
internal sealed class GptqHostMatrix
{
    private readonly GptqLinearWeights[] parts; // column blocks, left to right
    private readonly bool[] partHasBias; // false where the bias is absent or all zero
    private readonly int[]? sortedRows; // [in] original input k of each sorted row, null without act-order

    private GptqHostMatrix(string name, GptqLinearWeights[] parts, bool[] partHasBias, int[]? sortedRows, int[]? inversePermutation)
    {
        var first = parts[0];
        Name = name;
        InFeatures = first.InFeatures;
        OutFeatures = parts.Sum(p => p.OutFeatures);
        Bits = first.Bits;
        GroupSize = first.GroupSize;
        ZerosAreV2 = first.ZerosAreV2;
        this.parts = parts;
        this.partHasBias = partHasBias;
        this.sortedRows = sortedRows;
        InversePermutation = inversePermutation;
    }

    public string Name { get; }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public int Bits { get; }

    public int GroupSize { get; }

    public bool ZerosAreV2 { get; }

    /// <summary>Whether any part has a bias that is not all zero (else the device gets a one-element placeholder).</summary>
    public bool HasBias => partHasBias.Any(b => b);

    public int[]? InversePermutation { get; } // [in] sorted position of input k, null without act-order

    public int RowsPerWord => 32 / Bits;

    public int Groups => (InFeatures + GroupSize - 1) / GroupSize;

    /// <summary>Packed weights [in / rpw, out], rows in group order.</summary>
    public HostTensor<uint> QWeight => new(Name + ".qweight", InFeatures / RowsPerWord, OutFeatures, WriteQWeight);

    /// <summary>Packed zeros [groups, out / rpw].</summary>
    public HostTensor<uint> QZeros => new(Name + ".qzeros", Groups, OutFeatures / RowsPerWord, (destination, firstRow) =>
        WriteColumns(destination, firstRow, OutFeatures / RowsPerWord, p => p.QZeros.As<uint>(), p => p.OutFeatures / RowsPerWord));

    /// <summary>fp16 scales [groups, out].</summary>
    public HostTensor<ushort> Scales => new(Name + ".scales", Groups, OutFeatures, (destination, firstRow) =>
        WriteColumns(destination, firstRow, OutFeatures, p => p.Scales.As<ushort>(), p => p.OutFeatures));

    /// <summary>fp16 bias [out] (zero for parts without one), or a one-element placeholder when no part has one.</summary>
    public HostTensor<ushort> Bias => HasBias ? new(Name + ".bias", 1, OutFeatures, WriteBias) : HostTensor.Zero<ushort>(Name + ".bias");

    /// <summary>The inverse act-order permutation [in], or a one-element placeholder without act-order.</summary>
    public HostTensor<int> Permutation => InversePermutation is { } inverse
        ? new(Name + ".g_idx", 1, InFeatures, (destination, _) => inverse.CopyTo(destination))
        : HostTensor.Zero<int>(Name + ".g_idx");

    /// <summary>Validates one checkpoint layer and resolves its act-order permutation (no tensor is copied).</summary>
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
        bool hasBias = false;
        if (w.Bias != null)
        {
            Expect(w.Bias, TensorDType.F16, w.OutFeatures, w.Name);
            var b = w.Bias.As<ushort>();
            hasBias = b.ContainsAnyExcept((ushort)0) && b.ContainsAnyExcept((ushort)0x8000);
        }

        int[]? sorted = null;
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
                (sorted, inverse) = SortRowsByGroup(gidx, w.InFeatures, g, w.Name);
            }
        }

        return new GptqHostMatrix(w.Name, [w], [hasBias], sorted, inverse);
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

        // Equal inverse permutations mean equal sorted orders, so the first part's order serves every part.
        return new GptqHostMatrix(name, [.. parts.SelectMany(p => p.parts)], [.. parts.SelectMany(p => p.partHasBias)], first.sortedRows, first.InversePermutation);
    }

    /// <summary>
    /// Word rows of the packed weights, each part's columns at its offset. With act-order, sorted row i takes input
    /// sortedRows[i]'s value from its source word, so group g occupies rows [g*G, (g+1)*G).
    /// </summary>
    private void WriteQWeight(Span<uint> destination, long firstRow)
    {
        int rpw = RowsPerWord;
        uint mask = (1u << Bits) - 1u;
        int rows = destination.Length / OutFeatures;
        int column = 0;
        foreach (var p in parts)
        {
            int width = p.OutFeatures;
            var source = p.QWeight.As<uint>();
            for (int r = 0; r < rows; r++)
            {
                long wordRow = firstRow + r;
                var target = destination.Slice((r * OutFeatures) + column, width);
                if (sortedRows == null)
                {
                    source.Slice(checked((int)(wordRow * width)), width).CopyTo(target);
                    continue;
                }

                target.Clear();
                for (int j = 0; j < rpw; j++)
                {
                    int k = sortedRows[(wordRow * rpw) + j];
                    OrField(source.Slice((k / rpw) * width, width), Bits * (k % rpw), mask, Bits * j, target);
                }
            }

            column += width;
        }
    }

    /// <summary>
    /// target[n] |= ((source[n] &gt;&gt; from) &amp; mask) &lt;&lt; to: moves one packed value per column into its sorted
    /// position. SIMD-wide, since act-order checkpoints spend most of their host preparation here.
    /// </summary>
    private static void OrField(ReadOnlySpan<uint> source, int from, uint mask, int to, Span<uint> target)
    {
        int n = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var masks = new Vector<uint>(mask);
            for (; n <= source.Length - Vector<uint>.Count; n += Vector<uint>.Count)
            {
                var field = Vector.ShiftLeft(Vector.ShiftRightLogical(new Vector<uint>(source[n..]), from) & masks, to);
                (new Vector<uint>(target[n..]) | field).CopyTo(target[n..]);
            }
        }

        for (; n < source.Length; n++)
        {
            target[n] |= ((source[n] >> from) & mask) << to;
        }
    }

    /// <summary>Rows of a per-part [rows, partWidth] tensor laid side by side into [rows, totalWidth].</summary>
    private void WriteColumns<T>(Span<T> destination, long firstRow, int totalWidth, SourceOf<T> source, Func<GptqLinearWeights, int> widthOf)
        where T : unmanaged
    {
        int rows = destination.Length / totalWidth;
        int column = 0;
        foreach (var p in parts)
        {
            int width = widthOf(p);
            var from = source(p).Slice(checked((int)(firstRow * width)), rows * width);
            for (int r = 0; r < rows; r++)
            {
                from.Slice(r * width, width).CopyTo(destination.Slice((r * totalWidth) + column, width));
            }

            column += width;
        }
    }

    private void WriteBias(Span<ushort> destination, long firstRow)
    {
        int column = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            var target = destination.Slice(column, parts[i].OutFeatures);
            if (partHasBias[i])
            {
                parts[i].Bias!.As<ushort>().CopyTo(target);
            }
            else
            {
                target.Clear();
            }

            column += parts[i].OutFeatures;
        }
    }

    private delegate ReadOnlySpan<T> SourceOf<T>(GptqLinearWeights part)
        where T : unmanaged;

    /// <summary>
    /// The sorted order of input rows by group (sorted row -> input k) and its inverse (input k -> sorted row).
    /// GPTQ act-order gives every group exactly G rows; anything else is refused.
    /// </summary>
    private static (int[] Sorted, int[] Inverse) SortRowsByGroup(ReadOnlySpan<int> gidx, int inFeatures, int g, string name)
    {
        var sorted = Enumerable.Range(0, inFeatures).ToArray();
        var keys = gidx.ToArray();
        Array.Sort(keys.ToArray(), sorted); // Sort keys alongside original indices.
        Array.Sort(keys); // keys now sorted too.

        // Array.Sort is not stable; within a group the order of rows does not matter for the result.
        for (int i = 0; i < inFeatures; i++)
        {
            if (keys[i] != i / g)
            {
                throw new NotSupportedException($"{name}: g_idx does not give every group exactly {g} rows (sorted row {i} is in group {keys[i]}); this act-order layout is not supported.");
            }
        }

        var inverse = new int[inFeatures];
        for (int i = 0; i < inFeatures; i++)
        {
            inverse[sorted[i]] = i;
        }

        return (sorted, inverse);
    }

    private static void Expect(TensorData t, TensorDType dtype, long elements, string layer)
    {
        if (t.DType != dtype || t.ElementCount != elements)
        {
            throw new InvalidDataException($"{layer}: tensor '{t.Name}' is {t.DType} with {t.ElementCount} elements; expected {dtype} with {elements}.");
        }
    }
}
