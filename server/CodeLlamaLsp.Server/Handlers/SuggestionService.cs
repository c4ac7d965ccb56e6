// The path every completion takes: suggestion cache, then (if a model is ready) the scheduler with a prompt
// from the Prompting library, then its post-processing. Shared by inlineCompletion and completion.
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class SuggestionService(ServerContext context)
{
    /// <summary>
    /// The suggestion to insert at <paramref name="offset"/> of the snapshot, or "" when there is none: model not
    /// ready, superseded by a newer request for the same document, or nothing worth suggesting.
    /// </summary>
    public async Task<string> SuggestAsync(DocumentSnapshot document, int offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (context.Cache.TryReuse(document.Uri, document.Text, offset) is { } reused)
        {
            context.Scheduler.CountCacheHit();
            return reused;
        }

        if (context.Models.Current is not { } backend)
        {
            return "";
        }

        var settings = context.Settings;
        PreparedPrompt? prompt = null;
        var outcome = await context.Scheduler.RunAsync(
            document.Uri,
            TimeSpan.FromMilliseconds(settings.DebounceMs),
            backend.Generator,
            () => (prompt = backend.Prompts.Completion(new EditorContext(document.Uri, document.LanguageId, document.Text, offset), settings)).Request,
            onText: null,
            cancellationToken).ConfigureAwait(false);
        if (outcome.Superseded || prompt is null)
        {
            return "";
        }

        string suggestion = prompt.Finish(outcome.Text);
        context.Log.Debug($"completion {document.Uri}@{offset}: queued {outcome.QueueTime.TotalMilliseconds:F0} ms, generated {outcome.GenerationTime.TotalMilliseconds:F0} ms, {suggestion.Length} chars ({outcome.StopReason})");
        if (suggestion.Length > 0)
        {
            context.Cache.Store(document.Uri, document.Text, offset, suggestion);
        }

        return suggestion;
    }
}
