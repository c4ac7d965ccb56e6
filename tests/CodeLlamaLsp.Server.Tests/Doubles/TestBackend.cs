// Test doubles for the model seam: a prompt builder whose prompt text is the code before the cursor, and a
// loader that hands out a scripted generator (optionally after a gate opens, or failing).
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Tests.Doubles;

internal sealed class PrefixPrompts : ISuggestionPrompts
{
    public PreparedPrompt Completion(EditorContext context, ServerSettings settings) =>
        new(new GenerationRequest([], context.Text[..context.Offset], GenerationOptions.Greedy(settings.MaxTokens)), raw => raw);

    public PreparedPrompt CodeAction(CodeActionInput input, ServerSettings settings) =>
        new(new GenerationRequest([], $"{input.Kind}:{input.Text[input.Start..input.End]}|{string.Join(";", input.Diagnostics)}", GenerationOptions.Greedy(settings.MaxTokens)), raw => raw.Trim());
}

internal sealed class TestLoader(ScriptedGenerator generator) : IModelBackendLoader
{
    /// <summary>When set, loading waits for it; lets tests observe the "loading" state.</summary>
    public TaskCompletionSource? Gate { get; init; }

    public string? FailWith { get; init; }

    public List<ServerSettings> Loads { get; } = [];

    public async Task<ModelBackend> LoadAsync(ServerSettings settings, IProgress<LoadProgress> progress, CancellationToken cancellationToken)
    {
        lock (Loads)
        {
            Loads.Add(settings);
        }

        progress.Report(new LoadProgress(0.5, "half way"));
        if (Gate is not null)
        {
            await Gate.Task.WaitAsync(cancellationToken);
        }

        if (FailWith is not null)
        {
            throw new InvalidOperationException(FailWith);
        }

        return new ModelBackend(settings.Model ?? "test-model", generator, new PrefixPrompts());
    }
}
