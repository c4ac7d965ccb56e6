// The streaming safetensors writer: what it writes reads back byte for byte through SafetensorsFile,
// and a short or overlong write is an error that leaves no plausible file behind.
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Loading;

public class SafetensorsWriterTests
{
    [Test]
    public void Written_tensors_read_back_with_dtype_shape_bytes_and_metadata()
    {
        using var folder = new TempFolder();
        string path = folder.File("t.safetensors");
        var halves = TensorData.FromArray("b.half", TensorDType.F16, [3], new[] { (Half)1, (Half)(-2), (Half)0.5 });
        var ints = TensorData.FromArray("a.ints", TensorDType.I32, [2, 2], new[] { 1, -2, 3, int.MaxValue });
        var bytes = TensorData.FromArray("c.bytes", TensorDType.U8, [5], new byte[] { 9, 8, 7, 6, 5 });
        SafetensorsWriter.WriteFile(path, [halves, ints, bytes], new Dictionary<string, string> { ["format"] = "pt" });

        using var file = SafetensorsFile.Open(path);
        Assert.Multiple(() =>
        {
            Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
            Assert.That(file.GetTensor("a.ints").As<int>().ToArray(), Is.EqualTo(new[] { 1, -2, 3, int.MaxValue }));
            Assert.That(file.GetTensor("a.ints").Shape, Is.EqualTo(new long[] { 2, 2 }));
            Assert.That(file.GetTensor("b.half").ToFloat32(), Is.EqualTo(new[] { 1f, -2f, 0.5f }));
            Assert.That(file.GetTensor("c.bytes").Data.ToArray(), Is.EqualTo(new byte[] { 9, 8, 7, 6, 5 }));
            Assert.That(BitConverter.ToUInt64(File.ReadAllBytes(path), 0) % 8, Is.Zero, "data must start 8-byte aligned");
            Assert.That(file.Entries.OrderBy(e => e.Begin).Select(e => e.Name), Is.EqualTo(new[] { "a.ints", "b.half", "c.bytes" }), "larger alignment first");
        });
    }

    [Test]
    public void Streamed_writes_may_cross_tensor_boundaries()
    {
        using var folder = new TempFolder();
        string path = folder.File("s.safetensors");
        var data = Enumerable.Range(0, 40).Select(i => (byte)i).ToArray();
        using (var writer = new SafetensorsWriter(path, [new("x", TensorDType.I32, [4]), new("y", TensorDType.I32, [6])]))
        {
            writer.Write(data.AsSpan(0, 7));
            writer.Write(data.AsSpan(7));
            writer.Complete();
        }

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.GetTensor("y").Data.ToArray(), Is.EqualTo(data[16..]));
    }

    [Test]
    public void Incomplete_file_is_an_error_and_is_removed()
    {
        using var folder = new TempFolder();
        string path = folder.File("short.safetensors");
        using (var writer = new SafetensorsWriter(path, [new("x", TensorDType.F32, [4])]))
        {
            writer.Write(new byte[8]);
            Assert.That(writer.Complete, Throws.InvalidOperationException.With.Message.Contains("8 of 16"));
        }

        Assert.That(Directory.GetFiles(folder.Path), Is.Empty);
    }

    [Test]
    public void Writing_past_the_declared_data_is_refused()
    {
        using var folder = new TempFolder();
        using var writer = new SafetensorsWriter(folder.File("long.safetensors"), [new("x", TensorDType.F16, [2])]);

        Assert.That(() => writer.Write(new byte[5]), Throws.InvalidOperationException.With.Message.Contains("pass the end"));
    }
}
