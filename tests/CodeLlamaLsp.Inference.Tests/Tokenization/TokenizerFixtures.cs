// Loads the shared Llama 2 tokenizer fixture (tokenizer.model plus sentencepiece's golden ids) for the tokenizer tests.
using System.Text.Json;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Tests.Tokenization;

/// <summary>One sentencepiece reference encoding: input text, ids, pieces (only some cases list them) and the decoded text.</summary>
public sealed record GoldenCase(int Index, string Text, int[] Ids, string[]? Pieces, string Decoded)
{
    /// <summary>A short printable label so a failing case names itself.</summary>
    public string Label
    {
        get
        {
            var escaped = JsonSerializer.Serialize(Text);
            return $"{Index:D3} {(escaped.Length > 50 ? escaped[..47] + "...\"" : escaped)}";
        }
    }
}

internal static class TokenizerFixtures
{
    private static readonly Lazy<LlamaTokenizer> SharedTokenizer = new(() => LlamaTokenizer.Load(ModelPath));
    private static readonly Lazy<GoldenCase[]> SharedCases = new(ReadGolden);

    public static string Directory => Path.Combine(RepoRoot, "..", "shared", "fixtures", "llama2-tokenizer");

    public static string ModelPath => Path.Combine(Directory, "tokenizer.model");

    public static LlamaTokenizer Tokenizer => SharedTokenizer.Value;

    public static IReadOnlyList<GoldenCase> Cases => SharedCases.Value;

    /// <summary>Repository root, found by walking up to CodeLlamaLsp.sln (fixtures live at ../shared beside it).</summary>
    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "CodeLlamaLsp.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("CodeLlamaLsp.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>NUnit sources: one test case per golden entry, named after it.</summary>
    public static IEnumerable<TestCaseData> GoldenCaseData(string testName) =>
        Cases.Select(c => new TestCaseData(c).SetName($"{testName}({c.Label})"));

    private static GoldenCase[] ReadGolden()
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Directory, "golden.json")));
        var strings = JsonSerializer.Deserialize<string[]>(File.ReadAllBytes(Path.Combine(Directory, "strings.json")))
            ?? throw new InvalidDataException("strings.json is empty");
        var cases = document.RootElement.GetProperty("cases").EnumerateArray().Select((c, i) => new GoldenCase(
            i,
            c.GetProperty("text").GetString()!,
            [.. c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())],
            c.TryGetProperty("pieces", out var pieces) ? [.. pieces.EnumerateArray().Select(e => e.GetString()!)] : null,
            c.GetProperty("decoded").GetString()!)).ToArray();
        if (!cases.Select(c => c.Text).SequenceEqual(strings))
        {
            throw new InvalidDataException("golden.json cases do not follow strings.json");
        }

        return cases;
    }
}
