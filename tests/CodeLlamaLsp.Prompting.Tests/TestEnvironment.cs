// Shared test fixtures: the repository root, the real Llama tokenizer (loaded once) and model descriptions.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Prompting.Tests;

internal static class TestEnvironment
{
    private static readonly Lazy<ITokenizer> LazyTokenizer = new(() =>
        LlamaTokenizer.Load(Path.Combine(RepoRoot, "..", "shared", "fixtures", "llama2-tokenizer", "tokenizer.model")));

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

    /// <summary>The real Llama 2 / CodeLlama tokenizer, so budgets are measured as the model measures them.</summary>
    public static ITokenizer Tokenizer => LazyTokenizer.Value;

    /// <summary>CodeLlama-34B-Instruct: 16k window, no infilling.</summary>
    public static ModelInfo Instruct34B { get; } = new("CodeLlama-34B-Instruct-GPTQ", 16384, 32000, SupportsInfill: false);

    /// <summary>CodeLlama-7B: infilling tokens present.</summary>
    public static ModelInfo Infill7B { get; } = new("CodeLlama-7B", 16384, 32016, SupportsInfill: true);
}
