// Reads one .safetensors file through a read-only memory mapping: validates the header completely
// before trusting any offset, then hands out tensors whose bytes point into the mapping.
using System.IO.MemoryMappedFiles;
using System.Text.Json;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>One tensor's entry in a safetensors header, offsets relative to the start of the data section.</summary>
public sealed record SafetensorsEntry(string Name, TensorDType DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>A memory-mapped safetensors file. Tensors returned by <see cref="GetTensor"/> are valid until disposal.</summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The reference implementation's limit; a larger header is treated as corrupt.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile mapping;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* basePointer;
    private readonly long dataStart;
    private readonly Dictionary<string, SafetensorsEntry> entries;
    private readonly Dictionary<string, TensorData> tensors = new(StringComparer.Ordinal);
    private int disposed;

    private SafetensorsFile(string path, MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* basePointer, long dataStart, Dictionary<string, SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        this.mapping = mapping;
        this.view = view;
        this.basePointer = basePointer;
        this.dataStart = dataStart;
        this.entries = entries;
        Metadata = metadata;
    }

    public string Path { get; }

    /// <summary>The optional <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IReadOnlyCollection<SafetensorsEntry> Entries => entries.Values;

    public IEnumerable<string> TensorNames => entries.Keys;

    /// <summary>Opens and validates a file; any malformation is a <see cref="ModelLoadException"/> naming the file.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"{path}: file not found.");
        }

        FileStream? stream = null;
        MemoryMappedFile? mapping = null;
        MemoryMappedViewAccessor? view = null;
        byte* pointer = null;
        try
        {
            // The length comes from the opened stream: Hugging Face caches hold symlinks, whose FileInfo.Length is the link's.
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            long fileLength = stream.Length;
            if (fileLength < 8)
            {
                throw new ModelLoadException($"{path}: {fileLength} bytes is too short for a safetensors file (expected an 8-byte header length, then the JSON header).");
            }

            mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            stream = null;
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            byte* basePointer = pointer + view.PointerOffset;

            ulong headerLength = *(ulong*)basePointer;
            if (!BitConverter.IsLittleEndian)
            {
                headerLength = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(headerLength);
            }

            if (headerLength > (ulong)(fileLength - 8))
            {
                throw new ModelLoadException($"{path}: header length {headerLength} runs past the end of the file ({fileLength} bytes); the file is truncated or not safetensors.");
            }

            if (headerLength > MaxHeaderBytes)
            {
                throw new ModelLoadException($"{path}: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit; the file is corrupt.");
            }

            var headerBytes = new ReadOnlySpan<byte>(basePointer + 8, (int)headerLength).ToArray();
            long dataStart = 8 + (long)headerLength;
            long dataLength = fileLength - dataStart;
            var (entries, metadata) = SafetensorsHeaderParser.Parse(path, headerBytes, dataLength);
            var file = new SafetensorsFile(path, mapping, view, basePointer, dataStart, entries, metadata);
            mapping = null;
            view = null;
            pointer = null;
            return file;
        }
        catch (IOException e)
        {
            throw new ModelLoadException($"{path}: cannot map the file ({e.Message}).", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new ModelLoadException($"{path}: cannot read the file ({e.Message}).", e);
        }
        finally
        {
            if (pointer != null)
            {
                view!.SafeMemoryMappedViewHandle.ReleasePointer();
            }

            view?.Dispose();
            mapping?.Dispose();
            stream?.Dispose();
        }
    }

    public bool Contains(string name) => entries.ContainsKey(name);

    public SafetensorsEntry? FindEntry(string name) => entries.GetValueOrDefault(name);

    /// <summary>The tensor's bytes as a window into the mapping (no copy).</summary>
    public TensorData GetTensor(string name)
    {
        ThrowIfDisposed();
        lock (tensors)
        {
            if (tensors.TryGetValue(name, out var cached))
            {
                return cached;
            }

            if (!entries.TryGetValue(name, out var entry))
            {
                throw new ModelLoadException($"{Path}: tensor '{name}' not found in this file.");
            }

            if (entry.ByteLength > int.MaxValue)
            {
                throw new ModelLoadException($"{Path}: tensor '{name}' has {entry.ByteLength} bytes; tensors of 2 GB or more are not supported.");
            }

            var manager = new MappedMemoryManager(this, basePointer + dataStart + entry.Begin, (int)entry.ByteLength);
            var tensor = new TensorData(name, entry.DType, entry.Shape, manager.Memory);
            tensors.Add(name, tensor);
            return tensor;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        mapping.Dispose();
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
}

/// <summary>Parses and validates a safetensors JSON header against the size of the data section.</summary>
internal static class SafetensorsHeaderParser
{
    public static (Dictionary<string, SafetensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata) Parse(string path, byte[] header, long dataLength)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw new ModelLoadException($"{path}: the header is not valid UTF-8; the file is corrupt.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path}: the header is not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelLoadException($"{path}: the header must be a JSON object, found {document.RootElement.ValueKind}.");
            }

            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }

                var entry = ReadEntry(path, property.Name, property.Value, dataLength);
                if (!entries.TryAdd(entry.Name, entry))
                {
                    throw new ModelLoadException($"{path}: tensor '{entry.Name}' appears twice in the header.");
                }
            }

            CheckNoOverlap(path, entries.Values);
            return (entries, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{path}: __metadata__ must be an object of strings, found {value.ValueKind}.");
        }

        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new ModelLoadException($"{path}: __metadata__ value '{item.Name}' must be a string, found {item.Value.ValueKind}.");
            }

            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static SafetensorsEntry ReadEntry(string path, string name, JsonElement value, long dataLength)
    {
        string where = $"{path}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{where}: expected an object with dtype, shape and data_offsets, found {value.ValueKind}.");
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new ModelLoadException($"{where}: missing or non-string \"dtype\".");
        }

        string dtypeText = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtypeText, out var dtype))
        {
            throw new ModelLoadException($"{where}: unknown dtype \"{dtypeText}\" (expected one of F16, BF16, F32, I32, I64, U8, I8, F64, I16, BOOL).");
        }

        var shape = ReadLongArray(where, value, "shape", expectedCount: null);
        var offsets = ReadLongArray(where, value, "data_offsets", expectedCount: 2);
        long begin = offsets[0], end = offsets[1];
        if (begin > end || end > dataLength)
        {
            throw new ModelLoadException($"{where}: data_offsets [{begin}, {end}] out of range: the data section has {dataLength} bytes (file truncated or header corrupt).");
        }

        // A product past long.MaxValue cannot match any real offsets; saturating keeps the message below.
        long expectedBytes = SafetensorsDType.SizeOf(dtype);
        foreach (long d in shape)
        {
            expectedBytes = d != 0 && expectedBytes > long.MaxValue / d ? long.MaxValue : expectedBytes * d;
        }

        if (end - begin != expectedBytes)
        {
            throw new ModelLoadException($"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes, but {dtypeText} x [{string.Join(", ", shape)}] needs {expectedBytes}.");
        }

        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    private static long[] ReadLongArray(string where, JsonElement value, string key, int? expectedCount)
    {
        if (!value.TryGetProperty(key, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new ModelLoadException($"{where}: missing or non-array \"{key}\".");
        }

        var result = new long[array.GetArrayLength()];
        if (expectedCount is int count && result.Length != count)
        {
            throw new ModelLoadException($"{where}: \"{key}\" has {result.Length} numbers, expected {count}.");
        }

        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long n) || n < 0)
            {
                throw new ModelLoadException($"{where}: \"{key}\" must hold non-negative integers, found {item.GetRawText()}.");
            }

            result[i++] = n;
        }

        return result;
    }

    // Writers may leave alignment gaps between tensors, so only true overlaps are errors.
    private static void CheckNoOverlap(string path, IEnumerable<SafetensorsEntry> entries)
    {
        SafetensorsEntry? previous = null;
        foreach (var entry in entries.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin))
        {
            if (previous != null && entry.Begin < previous.End)
            {
                throw new ModelLoadException($"{path}: tensor '{entry.Name}' data_offsets [{entry.Begin}, {entry.End}] overlap tensor '{previous.Name}' [{previous.Begin}, {previous.End}].");
            }

            previous = entry;
        }
    }
}
