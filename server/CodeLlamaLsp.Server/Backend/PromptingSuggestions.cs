// The real ISuggestionPrompts: builds completion prompts with CodeLlamaLsp.Prompting (CompletionPromptBuilder)
// and turns answers into edits with its CompletionPostProcessor. It only translates settings and paths.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Tokenization;
using CodeLlamaLsp.Prompting;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Backend;

public sealed class PromptingSuggestions(ITokenizer tokenizer, ModelInfo model) : ISuggestionPrompts
{
    public PreparedCompletion Completion(EditorContext context, ServerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(settings);
        var snapshot = new EditorSnapshot(context.Text, context.LanguageId, PathOf(context.Uri), context.Offset)
        {
            OtherDocuments = context.OtherDocuments,
        };
        var prompt = CompletionPromptBuilder.Build(snapshot, tokenizer, model, PromptSettingsFor(settings));
        return new PreparedCompletion(prompt.ToRequest(), raw =>
            CompletionPostProcessor.Process(prompt.Context, raw) is { } edit ? new SuggestionEdit(edit.Text, edit.Replace.Start, edit.Replace.End) : null);
    }

    public PreparedAction CodeAction(CodeActionInput input, ServerSettings settings) =>
        throw new NotSupportedException("code action prompts are not in the Prompting library of this build yet");

    /// <summary>The prompt settings the server's settings ask for; unset values keep Prompting's defaults.</summary>
    public static PromptSettings PromptSettingsFor(ServerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var defaults = new PromptSettings();
        return defaults with
        {
            Mode = PromptSettings.ParseMode(settings.PromptMode),
            MaxNewTokens = settings.MaxTokens ?? defaults.MaxNewTokens,
            MaxNewTokensSingleLine = Math.Min(settings.MaxTokens ?? defaults.MaxNewTokensSingleLine, defaults.MaxNewTokensSingleLine),
            Temperature = settings.Temperature ?? defaults.Temperature,
        };
    }

    /// <summary>A file path for prompts (shown to the model as the file name); non-file URIs stay as they are.</summary>
    public static string PathOf(string uri) =>
        System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed) && parsed.IsFile ? parsed.LocalPath : uri;
}
