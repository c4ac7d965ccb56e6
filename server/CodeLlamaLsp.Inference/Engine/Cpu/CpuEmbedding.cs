// The token embedding table on the CPU: rows stay in the checkpoint's dtype (memory-mapped for big models)
// and are converted to fp32 only when looked up, since a prompt touches a few hundred of 32000 rows.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cpu;

/// <summary>Embedding rows read straight from the checkpoint tensor.</summary>
internal sealed class CpuEmbedding : PreparedEmbedding
{
    private readonly TensorData _table; // [vocab, hidden]

    private CpuEmbedding(TensorData table, int vocab, int hidden)
        : base(vocab, hidden) => _table = table;

    public static CpuEmbedding Prepare(TensorData table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Shape.Count != 2 || table.DType is not (TensorDType.F16 or TensorDType.BF16 or TensorDType.F32))
        {
            throw new ArgumentException($"Embedding '{table.Name}' is {table.DType} [{string.Join(", ", table.Shape)}]; expected a 2-D F16, BF16 or F32 [vocab, hidden] table.", nameof(table));
        }

        return new CpuEmbedding(table, checked((int)table.Shape[0]), checked((int)table.Shape[1]));
    }

    public void Lookup(ReadOnlySpan<int> tokenIds, float[] output)
    {
        for (int t = 0; t < tokenIds.Length; t++)
        {
            int id = tokenIds[t];
            if ((uint)id >= (uint)VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(tokenIds), $"Token id {id} is outside the vocabulary of {VocabSize}.");
            }

            RowConversion.ToFloat32(_table, (long)id * HiddenSize, output.AsSpan(t * HiddenSize, HiddenSize));
        }
    }
}

/// <summary>Converts a run of F16/BF16/F32 elements of a tensor to fp32.</summary>
internal static class RowConversion
{
    public static void ToFloat32(TensorData tensor, long firstElement, Span<float> destination)
    {
        var bytes = tensor.Data.Span;
        switch (tensor.DType)
        {
            case TensorDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.Slice(checked((int)(firstElement * 4)), destination.Length * 4)).CopyTo(destination);
                break;
            case TensorDType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes.Slice(checked((int)(firstElement * 2)), destination.Length * 2)), destination);
                break;
            case TensorDType.BF16:
                var raw = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes.Slice(checked((int)(firstElement * 2)), destination.Length * 2));
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
                }

                break;
            default:
                throw new ArgumentException($"Tensor '{tensor.Name}' has dtype {tensor.DType}; expected F16, BF16 or F32.", nameof(tensor));
        }
    }
}
