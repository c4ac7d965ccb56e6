// Names and element sizes of the safetensors dtypes the loader accepts.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>Maps between safetensors dtype strings and <see cref="TensorDType"/>.</summary>
public static class SafetensorsDType
{
    public static bool TryParse(string text, out TensorDType dtype)
    {
        switch (text)
        {
            case "F16": dtype = TensorDType.F16; return true;
            case "BF16": dtype = TensorDType.BF16; return true;
            case "F32": dtype = TensorDType.F32; return true;
            case "I32": dtype = TensorDType.I32; return true;
            case "I64": dtype = TensorDType.I64; return true;
            case "U8": dtype = TensorDType.U8; return true;
            case "I8": dtype = TensorDType.I8; return true;
            case "F64": dtype = TensorDType.F64; return true;
            case "I16": dtype = TensorDType.I16; return true;
            case "BOOL": dtype = TensorDType.BOOL; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The string safetensors writes for this dtype (the enum names match the spec).</summary>
    public static string Name(TensorDType dtype) => dtype.ToString();

    public static int SizeOf(TensorDType dtype) => dtype switch
    {
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.I64 or TensorDType.F64 => 8,
        TensorDType.U8 or TensorDType.I8 or TensorDType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}
