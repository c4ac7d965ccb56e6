// Random damage to a small safetensors file must end in a ModelLoadException (or a file that still
// validates), never in another exception type or an access outside the mapping.
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Tests.Loading;

public class SafetensorsFuzzTests
{
    [Test]
    public void Corrupted_headers_fail_only_with_model_load_exceptions()
    {
        using var folder = new TempFolder();
        string original = folder.File("original.safetensors");
        SafetensorsWriter.WriteFile(original, [
            TensorData.FromArray("model.norm.weight", TensorDType.F16, [4], new[] { (Half)1, (Half)2, (Half)3, (Half)4 }),
            TensorData.FromArray("q.qweight", TensorDType.I32, [2, 3], new[] { 1, 2, 3, 4, 5, 6 }),
        ]);
        var bytes = File.ReadAllBytes(original);
        int headerEnd = 8 + (int)BitConverter.ToUInt64(bytes, 0);
        var random = new Random(1234);
        string damaged = folder.File("damaged.safetensors");
        int rejected = 0;
        const int Trials = 400;
        for (int trial = 0; trial < Trials; trial++)
        {
            var copy = (byte[])bytes.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
            {
                int position = random.Next(headerEnd);
                copy[position] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)"0123456789"[random.Next(10)],
                    _ => (byte)"[]{},:\""[random.Next(7)],
                };
            }

            File.WriteAllBytes(damaged, copy[..random.Next(copy.Length / 2, copy.Length + 1)]);
            try
            {
                using var file = SafetensorsFile.Open(damaged);
                foreach (var entry in file.Entries)
                {
                    _ = file.GetTensor(entry.Name).Data.ToArray();
                }
            }
            catch (ModelLoadException)
            {
                rejected++;
            }
        }

        Assert.That(rejected, Is.GreaterThan(Trials / 2), "most random damage should be detected");
    }
}
