// Streams a safetensors file to disk: the header (all names, dtypes, shapes, offsets) first, then the
// tensor bytes in file order, so files far larger than memory (the 18 GB 34B checkpoint) can be written.
using System.Text.Json;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>A tensor to be written: name, dtype and shape (bytes come later through the writer).</summary>
public sealed record SafetensorsTensorSpec(string Name, TensorDType DType, IReadOnlyList<long> Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (n, d) => checked(n * d));

    public long ByteLength => checked(ElementCount * SafetensorsDType.SizeOf(DType));
}

/// <summary>
/// Writes one safetensors file. The constructor fixes the layout and writes the header; <see cref="Write"/>
/// then appends data in <see cref="Order"/>; <see cref="Complete"/> checks every byte arrived and publishes
/// the file (it is written as PATH.partial and renamed, so an interrupted run never leaves a plausible file).
/// </summary>
public sealed class SafetensorsWriter : IDisposable, IAsyncDisposable
{
    private readonly string path;
    private readonly string partialPath;
    private readonly FileStream stream;
    private readonly long dataStart;
    private long written;
    private bool completed;

    public SafetensorsWriter(string path, IEnumerable<SafetensorsTensorSpec> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        this.path = path;
        partialPath = path + ".partial";

        // The reference writer's order: larger alignment first, then by name, so every tensor starts aligned.
        Order = tensors.OrderByDescending(t => SafetensorsDType.SizeOf(t.DType)).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        if (Order.Select(t => t.Name).Distinct(StringComparer.Ordinal).Count() != Order.Count)
        {
            throw new ArgumentException("tensor names must be unique", nameof(tensors));
        }

        var offsets = new List<(long Begin, long End)>(Order.Count);
        long position = 0;
        foreach (var tensor in Order)
        {
            offsets.Add((position, position + tensor.ByteLength));
            position += tensor.ByteLength;
        }

        DataLength = position;
        byte[] header = BuildHeader(Order, offsets, metadata);
        dataStart = 8 + header.Length;
        FileLength = dataStart + DataLength;

        stream = new FileStream(partialPath, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            PreallocationSize = FileLength,
        });
        Span<byte> length = stackalloc byte[8];
        BitConverter.TryWriteBytes(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
    }

    /// <summary>Tensors in the order their bytes must be written.</summary>
    public IReadOnlyList<SafetensorsTensorSpec> Order { get; }

    public long DataLength { get; }

    public long FileLength { get; }

    /// <summary>Data bytes written so far.</summary>
    public long BytesWritten => written;

    /// <summary>Writes a whole file from in-memory tensors (tests, small checkpoints).</summary>
    public static void WriteFile(string path, IEnumerable<TensorData> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        using var writer = new SafetensorsWriter(path, byName.Values.Select(t => new SafetensorsTensorSpec(t.Name, t.DType, t.Shape)), metadata);
        foreach (var spec in writer.Order)
        {
            var data = byName[spec.Name].Data.Span;
            if (data.Length != spec.ByteLength)
            {
                throw new ArgumentException($"tensor '{spec.Name}' has {data.Length} bytes; {spec.DType} [{string.Join(", ", spec.Shape)}] needs {spec.ByteLength}.", nameof(tensors));
            }

            writer.Write(data);
        }

        writer.Complete();
    }

    /// <summary>Appends data bytes; the caller follows <see cref="Order"/> (bytes may cross tensor boundaries).</summary>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        CheckRoom(bytes.Length);
        stream.Write(bytes);
        written += bytes.Length;
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        CheckRoom(bytes.Length);
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        written += bytes.Length;
    }

    /// <summary>Checks that all data arrived, flushes, and renames the file into place.</summary>
    public void Complete()
    {
        if (written != DataLength)
        {
            throw new InvalidOperationException($"{path}: {written} of {DataLength} data bytes written; the file is incomplete.");
        }

        stream.Flush(flushToDisk: false);
        stream.Dispose();
        File.Move(partialPath, path, overwrite: true);
        completed = true;
    }

    public void Dispose()
    {
        if (completed)
        {
            return;
        }

        stream.Dispose();
        File.Delete(partialPath);
    }

    public async ValueTask DisposeAsync()
    {
        if (completed)
        {
            return;
        }

        await stream.DisposeAsync().ConfigureAwait(false);
        File.Delete(partialPath);
    }

    private void CheckRoom(int count)
    {
        ObjectDisposedException.ThrowIf(completed, this);
        if (written + count > DataLength)
        {
            throw new InvalidOperationException($"{path}: writing {count} bytes at {written} would pass the end of the data ({DataLength} bytes).");
        }
    }

    // Padded with spaces so the data section starts 8-byte aligned, as the reference writer does.
    private static byte[] BuildHeader(IReadOnlyList<SafetensorsTensorSpec> order, List<(long Begin, long End)> offsets, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            for (int i = 0; i < order.Count; i++)
            {
                json.WriteStartObject(order[i].Name);
                json.WriteString("dtype", SafetensorsDType.Name(order[i].DType));
                json.WriteStartArray("shape");
                foreach (long d in order[i].Shape)
                {
                    json.WriteNumberValue(d);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offsets[i].Begin);
                json.WriteNumberValue(offsets[i].End);
                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        int length = (int)buffer.Length;
        int padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }
}
