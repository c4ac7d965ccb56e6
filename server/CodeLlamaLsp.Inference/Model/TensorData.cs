// One tensor's bytes as stored in the checkpoint (memory-mapped from safetensors, or in memory for
// tests and generated checkpoints), with its dtype and shape. Backends read or upload from here.
using System.Runtime.InteropServices;

namespace CodeLlamaLsp.Inference.Model;

/// <summary>Element types that appear in Llama/GPTQ safetensors files.</summary>
public enum TensorDType
{
    F16,
    BF16,
    F32,
    I32,
    I64,
    U8,
    I8,
    F64,
    I16,
    BOOL,
}

/// <summary>A named tensor: dtype, shape (row-major) and raw little-endian bytes.</summary>
public sealed class TensorData
{
    public TensorData(string name, TensorDType dtype, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        Data = data;
    }

    public string Name { get; }

    public TensorDType DType { get; }

    public IReadOnlyList<long> Shape { get; }

    /// <summary>Raw bytes; for memory-mapped files this points into the mapping owned by the loaded model.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape)
            {
                n *= d;
            }

            return n;
        }
    }

    /// <summary>Reinterprets the bytes as elements of T (T must match the dtype's size).</summary>
    public ReadOnlySpan<T> As<T>()
        where T : unmanaged => MemoryMarshal.Cast<byte, T>(Data.Span);

    /// <summary>Converts F16, BF16 or F32 data to a new fp32 array.</summary>
    public float[] ToFloat32()
    {
        var result = new float[ElementCount];
        CopyToFloat32(0, result);
        return result;
    }

    /// <summary>
    /// Converts elements [<paramref name="firstElement"/>, + destination length) of F16, BF16 or F32 data to fp32, so a
    /// large tensor can be converted a slice at a time (load-time staging) without a whole-tensor copy.
    /// </summary>
    public void CopyToFloat32(long firstElement, Span<float> destination)
    {
        var bytes = Data.Span;
        switch (DType)
        {
            case TensorDType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).Slice(checked((int)firstElement), destination.Length).CopyTo(destination);
                break;
            case TensorDType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(bytes).Slice(checked((int)firstElement), destination.Length);
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = (float)halves[i];
                }

                break;
            case TensorDType.BF16:
                var raw = MemoryMarshal.Cast<byte, ushort>(bytes).Slice(checked((int)firstElement), destination.Length);
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                }

                break;
            default:
                throw new InvalidOperationException($"Tensor '{Name}' has dtype {DType}; expected F16, BF16 or F32.");
        }
    }

    /// <summary>Wraps an in-memory array (tests, generated checkpoints).</summary>
    public static TensorData FromArray<T>(string name, TensorDType dtype, IReadOnlyList<long> shape, T[] values)
        where T : unmanaged => new(name, dtype, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
}
