// Test doubles for the model seam: a prompt builder whose prompt text is the code before the cursor (so
// replies show which text they were built from), and a loader that hands out a scripted generator,
// optionally after a gate opens, or failing.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Tests.Doubles;

internal sealed class PrefixPrompts : ISuggestionPrompts
{
    public PreparedCompletion Completion(EditorContext context, ServerSettings settings) =>
        new(new GenerationRequest([], context.Text[..context.Offset], GenerationOptions.Greedy(settings.MaxTokens ?? 16)), raw => new SuggestionEdit(raw, context.Offset, context.Offset));

    /// <summary>Explain answers markdown; the others replace the selection with the answer.</summary>
    public PreparedAction CodeAction(CodeActionInput input, ServerSettings settings) =>
        new(
            new GenerationRequest([], $"{input.Action}:{input.Text[input.Start..input.End]}|{string.Join(";", input.Diagnostics.Select(d => d.Message))}", GenerationOptions.Greedy(16)),
            raw => input.Action == CodeLlamaAction.Explain ? new ActionAnswer(raw.Trim(), null) : new ActionAnswer(null, new SuggestionEdit(raw.Trim(), input.Start, input.End)));
}

internal sealed class TestLoader(ScriptedGenerator generator) : IModelBackendLoader
{
    /// <summary>When set, loading waits for it; lets tests observe the "loading" state.</summary>
    public TaskCompletionSource? Gate { get; init; }

    public string? FailWith { get; init; }

    /// <summary>When set, loading throws this exception (for messages that come from a specific exception type).</summary>
    public Exception? FailWithException { get; init; }

    public List<ServerSettings> Loads { get; } = [];

    public async Task<ModelBackend> LoadAsync(ServerSettings settings, IProgress<ModelLoadProgress> progress, CancellationToken cancellationToken)
    {
        lock (Loads)
        {
            Loads.Add(settings);
        }

        progress.Report(new ModelLoadProgress(0.5, "half way"));
        if (Gate is not null)
        {
            await Gate.Task.WaitAsync(cancellationToken);
        }

        if (FailWith is not null)
        {
            throw new InvalidOperationException(FailWith);
        }

        if (FailWithException is not null)
        {
            throw FailWithException;
        }

        return new ModelBackend(settings.Model ?? "test-model", generator, new PrefixPrompts());
    }
}
