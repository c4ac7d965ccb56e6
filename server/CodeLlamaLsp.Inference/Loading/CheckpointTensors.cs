// The tensors of a checkpoint across one or more safetensors files: finds the weight file the way
// AutoGPTQ does, follows a sharded index's weight_map, and owns every mapping it opens.
using System.Text.Json;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>Name-to-tensor lookup over all weight files of one checkpoint folder.</summary>
public sealed class CheckpointTensors : IDisposable
{
    private readonly List<SafetensorsFile> files;
    private readonly Dictionary<string, SafetensorsFile> fileOfTensor;

    private CheckpointTensors(List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> fileOfTensor)
    {
        this.files = files;
        this.fileOfTensor = fileOfTensor;
    }

    public IReadOnlyList<SafetensorsFile> Files => files;

    public IEnumerable<string> TensorNames => fileOfTensor.Keys;

    /// <summary>Total bytes of all tensor data.</summary>
    public long TotalBytes => files.Sum(f => f.Entries.Sum(e => e.ByteLength));

    /// <summary>
    /// Opens the weights: <c>&lt;modelFileBaseName&gt;.safetensors</c>, else <c>model.safetensors</c>, else
    /// <c>model.safetensors.index.json</c>, else the folder's only *.safetensors file.
    /// </summary>
    public static CheckpointTensors Open(string directory, string? modelFileBaseName = null, Action<string>? onFileOpened = null)
    {
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(modelFileBaseName))
        {
            candidates.Add(modelFileBaseName + ".safetensors");
        }

        candidates.Add("model.safetensors");
        foreach (string name in candidates)
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path))
            {
                return OpenSingle(path, onFileOpened);
            }
        }

        var indexNames = new List<string>();
        if (!string.IsNullOrEmpty(modelFileBaseName))
        {
            indexNames.Add(modelFileBaseName + ".safetensors.index.json");
        }

        indexNames.Add("model.safetensors.index.json");
        foreach (string name in indexNames.Distinct())
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path))
            {
                return OpenSharded(directory, path, onFileOpened);
            }
        }

        var looseFiles = Directory.Exists(directory) ? Directory.GetFiles(directory, "*.safetensors") : [];
        if (looseFiles.Length == 1)
        {
            return OpenSingle(looseFiles[0], onFileOpened);
        }

        string tried = string.Join(", ", candidates.Concat(indexNames).Distinct());
        string found = looseFiles.Length > 1 ? $"; found {looseFiles.Length} *.safetensors files but no index to tell them apart" : string.Empty;
        throw new ModelLoadException($"{directory}: no weights found (looked for {tried}{found}).");
    }

    public bool Contains(string name) => fileOfTensor.ContainsKey(name);

    /// <summary>Where a tensor lives and its header entry, or null when absent.</summary>
    public (SafetensorsFile File, SafetensorsEntry Entry)? Find(string name) =>
        fileOfTensor.TryGetValue(name, out var file) ? (file, file.FindEntry(name)!) : null;

    public TensorData Get(string name) =>
        fileOfTensor.TryGetValue(name, out var file)
            ? file.GetTensor(name)
            : throw new ModelLoadException($"tensor '{name}' not found in {DescribeFiles()}.");

    public string DescribeFiles() => files.Count == 1 ? files[0].Path : $"{files.Count} shards in {Path.GetDirectoryName(files[0].Path)}";

    public void Dispose()
    {
        foreach (var file in files)
        {
            file.Dispose();
        }
    }

    private static CheckpointTensors OpenSingle(string path, Action<string>? onFileOpened)
    {
        var file = SafetensorsFile.Open(path);
        onFileOpened?.Invoke(path);
        var map = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (string name in file.TensorNames)
        {
            map[name] = file;
        }

        return new CheckpointTensors([file], map);
    }

    private static CheckpointTensors OpenSharded(string directory, string indexPath, Action<string>? onFileOpened)
    {
        var weightMap = ReadWeightMap(indexPath);
        var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var map = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (var (tensor, shard) in weightMap)
            {
                if (!opened.TryGetValue(shard, out var file))
                {
                    if (Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal))
                    {
                        throw new ModelLoadException($"{indexPath}: weight_map entry for '{tensor}' points outside the folder (\"{shard}\").");
                    }

                    string shardPath = Path.Combine(directory, shard);
                    if (!File.Exists(shardPath))
                    {
                        throw new ModelLoadException($"{indexPath}: shard \"{shard}\" (holding tensor '{tensor}') is missing: {shardPath} not found.");
                    }

                    file = SafetensorsFile.Open(shardPath);
                    opened.Add(shard, file);
                    onFileOpened?.Invoke(shardPath);
                }

                if (!file.Contains(tensor))
                {
                    throw new ModelLoadException($"{file.Path}: tensor '{tensor}' is listed for this shard in {Path.GetFileName(indexPath)} but not in its header.");
                }

                map[tensor] = file;
            }

            return new CheckpointTensors([.. opened.Values], map);
        }
        catch
        {
            foreach (var file in opened.Values)
            {
                file.Dispose();
            }

            throw;
        }
    }

    private static List<(string Tensor, string Shard)> ReadWeightMap(string indexPath)
    {
        using var document = CheckpointConfigReader.ParseJsonFile(indexPath);
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("weight_map", out var weightMap)
            || weightMap.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"{indexPath}: expected an object with a \"weight_map\" object.");
        }

        var result = new List<(string, string)>();
        foreach (var item in weightMap.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new ModelLoadException($"{indexPath}: weight_map entry for '{item.Name}' must be a file name, found {item.Value.GetRawText()}.");
            }

            result.Add((item.Name, item.Value.GetString()!));
        }

        if (result.Count == 0)
        {
            throw new ModelLoadException($"{indexPath}: weight_map is empty.");
        }

        return result;
    }
}
