// The path every completion takes: suggestion cache, then (if a model is ready) the scheduler with a prompt
// from the Prompting library, then its post-processing. Shared by inlineCompletion and completion.
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class SuggestionService(ServerContext context)
{
    /// <summary>
    /// The edit to suggest at <paramref name="offset"/> of the snapshot, or null when there is none: model not
    /// ready, superseded by a newer request for the same document, or nothing worth suggesting.
    /// </summary>
    /// <remarks>An <paramref name="invoked"/> request (the user asked explicitly) skips the debounce: no keystrokes follow it.</remarks>
    public async Task<SuggestionEdit?> SuggestAsync(DocumentSnapshot document, int offset, CancellationToken cancellationToken, bool invoked = false)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (context.Cache.TryReuse(document.Uri, document.Text, offset) is { } reused)
        {
            context.Scheduler.CountCacheHit();
            return new SuggestionEdit(reused, offset, offset);
        }

        if (context.Models.Current is not { } backend)
        {
            return null;
        }

        var settings = context.Settings;
        var others = context.Documents.Others(document.Uri, document.LanguageId);
        PreparedCompletion? prompt = null;
        var buildTime = TimeSpan.Zero;
        var outcome = await context.Scheduler.RunAsync(
            document.Uri,
            invoked ? TimeSpan.Zero : TimeSpan.FromMilliseconds(settings.DebounceMs),
            backend.Generator,
            () =>
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var editor = new EditorContext(document.Uri, document.LanguageId, document.Text, offset) { OtherDocuments = others.Select(d => d.ToOpenDocument()).ToList() };
                prompt = backend.Prompts.Completion(editor, settings);
                buildTime = clock.Elapsed;
                return prompt.Request;
            },
            onText: null,
            cancellationToken,
            soFar => prompt?.IsFinished?.Invoke(soFar) == true).ConfigureAwait(false);
        if (outcome.Superseded || prompt is null)
        {
            return null;
        }

        var edit = prompt.Finish(outcome.Text);
        context.Log.Debug($"completion {document.Uri}@{offset}: queued {outcome.QueueTime.TotalMilliseconds:F0} ms (prompt {buildTime.TotalMilliseconds:F0} ms, {prompt.Request.PromptIds.Count} tokens), generated {outcome.GenerationTime.TotalMilliseconds:F0} ms, raw {outcome.Text.Length} chars, {(edit is null ? "nothing to offer" : $"{edit.Text.Length} chars")} ({outcome.StopReason})");
        if (edit is { Text.Length: > 0 } && edit.Start == offset && edit.End == offset)
        {
            context.Cache.Store(document.Uri, document.Text, offset, edit.Text);
        }

        return edit is { Text.Length: > 0 } ? edit : null;
    }
}
