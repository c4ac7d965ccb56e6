// Deliberate damage for broken-checkpoint tests: edit a safetensors header or a JSON config in a
// temp copy of a fixture, keeping the data bytes as they were.
using System.Text;
using System.Text.Json.Nodes;

namespace CodeLlamaLsp.Inference.Tests.Loading;

internal static class CheckpointSurgery
{
    /// <summary>Rewrites the JSON header of a (small) safetensors file; offsets stay relative to the new data start.</summary>
    public static void EditHeader(string path, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(path);
        int n = checked((int)BitConverter.ToUInt64(bytes, 0));
        var header = JsonNode.Parse(bytes.AsSpan(8, n))!.AsObject();
        edit(header);
        var newHeader = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var output = File.Create(path);
        output.Write(BitConverter.GetBytes((ulong)newHeader.Length));
        output.Write(newHeader);
        output.Write(bytes.AsSpan(8 + n));
    }

    public static JsonObject Entry(JsonObject header, string name) => header[name]!.AsObject();

    public static void SetOffsets(JsonObject header, string name, long begin, long end) =>
        Entry(header, name)["data_offsets"] = new JsonArray(begin, end);

    public static (long Begin, long End) Offsets(JsonObject header, string name)
    {
        var offsets = Entry(header, name)["data_offsets"]!.AsArray();
        return ((long)offsets[0]!, (long)offsets[1]!);
    }

    public static void EditJson(string path, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    /// <summary>Overwrites bytes at a data-section offset of a tensor.</summary>
    public static void PatchData(string path, string tensor, long offsetInTensor, ReadOnlySpan<byte> value)
    {
        var bytes = File.ReadAllBytes(path);
        int n = checked((int)BitConverter.ToUInt64(bytes, 0));
        var header = JsonNode.Parse(bytes.AsSpan(8, n))!.AsObject();
        var (begin, _) = Offsets(header, tensor);
        value.CopyTo(bytes.AsSpan((int)(8 + n + begin + offsetInTensor)));
        File.WriteAllBytes(path, bytes);
    }
}
