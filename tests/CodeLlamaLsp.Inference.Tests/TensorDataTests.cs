// Checks the dtype conversions every backend relies on when it reads unquantized tensors.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests;

public class TensorDataTests
{
    [Test]
    public void F16_and_BF16_convert_to_the_same_floats()
    {
        var values = new[] { 0f, 1f, -2.5f, 65504f };
        var f16 = TensorData.FromArray("h", TensorDType.F16, [4], values.Select(v => (Half)v).ToArray());
        var bf16 = TensorData.FromArray("b", TensorDType.BF16, [4], values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >>> 16)).ToArray());

        Assert.That(f16.ToFloat32(), Is.EqualTo(values));
        Assert.That(bf16.ToFloat32(), Is.EqualTo(new[] { 0f, 1f, -2.5f, 65280f }));
    }

    [Test]
    public void Integer_tensor_refuses_float_conversion_with_its_name()
    {
        var ints = TensorData.FromArray("model.layers.0.mlp.up_proj.qweight", TensorDType.I32, [2], new[] { 1, 2 });

        Assert.That(() => ints.ToFloat32(), Throws.InvalidOperationException.With.Message.Contains("up_proj.qweight"));
    }
}
