// What one device tensor will hold, described without materialising it: a row count, a row length and a writer
// that produces any range of rows from the checkpoint (usually straight from its memory map). Load-time uploads
// (StagedUpload) call the writer one staging chunk at a time, so no tensor is ever copied whole into managed memory.
using System.Runtime.InteropServices;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Writes rows [<paramref name="firstRow"/>, firstRow + destination.Length / rowLength) of a tensor.</summary>
internal delegate void RowWriter<T>(Span<T> destination, long firstRow)
    where T : unmanaged;

/// <summary>A device tensor's contents: <see cref="Rows"/> rows of <see cref="RowLength"/> elements.</summary>
/// <param name="Name">What it is, for the out-of-memory message (e.g. "model.layers.0.self_attn.q_proj.qweight").</param>
internal sealed record HostTensor<T>(string Name, long Rows, int RowLength, RowWriter<T> Write)
    where T : unmanaged
{
    public long Length => Rows * RowLength;
}

/// <summary>Tensors taken from the checkpoint as they are, or converted element by element.</summary>
internal static class HostTensor
{
    /// <summary>The tensor's bytes unchanged, read as elements of <typeparamref name="T"/>, <paramref name="rowLength"/> per row.</summary>
    public static HostTensor<T> Copy<T>(string name, ReadOnlyMemory<byte> source, int rowLength = 1)
        where T : unmanaged
    {
        long length = source.Length / System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        return new HostTensor<T>(name, length / rowLength, rowLength, (destination, firstRow) =>
            MemoryMarshal.Cast<byte, T>(source.Span).Slice(checked((int)(firstRow * rowLength)), destination.Length).CopyTo(destination));
    }

    /// <summary>A single element of value default: the placeholder for an absent bias or permutation.</summary>
    public static HostTensor<T> Zero<T>(string name)
        where T : unmanaged => new(name, 1, 1, (destination, _) => destination.Clear());

    /// <summary>fp16 bit patterns of an F16 (copied), BF16 or F32 (rounded to nearest) tensor, <paramref name="rowLength"/> per row.</summary>
    public static HostTensor<ushort> HalfBits(string name, TensorData t, int rowLength)
    {
        ExpectFloat(t);
        if (t.DType == TensorDType.F16)
        {
            return Copy<ushort>(name, t.Data, rowLength);
        }

        return new HostTensor<ushort>(name, t.ElementCount / rowLength, rowLength, (destination, firstRow) =>
        {
            var row = new float[rowLength];
            for (int r = 0; r < destination.Length / rowLength; r++)
            {
                t.CopyToFloat32((firstRow + r) * rowLength, row);
                var target = destination.Slice(r * rowLength, rowLength);
                for (int i = 0; i < rowLength; i++)
                {
                    target[i] = BitConverter.HalfToUInt16Bits((Half)row[i]);
                }
            }
        });
    }

    /// <summary>fp32 values of an F16, BF16 or F32 tensor (norm weights).</summary>
    public static HostTensor<float> Float32(string name, TensorData t)
    {
        ExpectFloat(t);
        return new HostTensor<float>(name, t.ElementCount, 1, (destination, first) => t.CopyToFloat32(first, destination));
    }

    // Checked when the tensor is described, on the loading thread, so the error surfaces where the old whole-tensor
    // conversion raised it rather than inside an upload worker.
    private static void ExpectFloat(TensorData t)
    {
        if (t.DType is not (TensorDType.F16 or TensorDType.BF16 or TensorDType.F32))
        {
            throw new InvalidOperationException($"Tensor '{t.Name}' has dtype {t.DType}; expected F16, BF16 or F32.");
        }
    }
}
