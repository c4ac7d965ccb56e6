// Reads a whole small file whose name came from a setting (config.json, refs/<revision>, tokenizer.model, a
// --config file) with a size cap checked before and while reading: a name that points at /dev/zero, a huge
// file or a symlink to one must cost at most the cap, never all of memory.
namespace CodeLlamaLsp.Inference.Loading;

public static class BoundedFile
{
    /// <summary>
    /// The file's bytes, or an <see cref="IOException"/> naming the path and the cap when it holds more than
    /// <paramref name="maxBytes"/>. Devices report no length, so the cap is also enforced on the bytes read.
    /// </summary>
    public static byte[] ReadAllBytes(string path, int maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        if (stream.CanSeek && stream.Length > maxBytes)
        {
            throw TooLarge(path, maxBytes);
        }

        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw TooLarge(path, maxBytes);
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static IOException TooLarge(string path, int maxBytes) =>
        new($"{path} is larger than the {maxBytes:N0}-byte limit for this file");
}
