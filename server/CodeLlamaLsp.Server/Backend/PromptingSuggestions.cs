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
        var prompt = CompletionPromptBuilder.Build(snapshot, tokenizer, model, PromptSettingsFor(settings, model));
        return new PreparedCompletion(
            WithSpeculation(prompt.ToRequest(), settings),
            raw => CompletionPostProcessor.Process(prompt.Context, raw) is { } edit ? new SuggestionEdit(edit.Text, edit.Replace.Start, edit.Replace.End) : null)
        {
            IsFinished = soFar => CompletionPostProcessor.IsFinished(prompt.Context, soFar),
        };
    }

    public PreparedAction CodeAction(CodeActionInput input, ServerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(input);
        var snapshot = new EditorSnapshot(input.Text, input.LanguageId, PathOf(input.Uri), input.Start)
        {
            Selection = new TextRange(input.Start, input.End),
            Diagnostics = input.Diagnostics,
        };
        var kind = input.Action switch
        {
            CodeLlamaAction.Explain => CodeActionKind.Explain,
            CodeLlamaAction.Fix => CodeActionKind.Fix,
            CodeLlamaAction.GenerateDocs => CodeActionKind.GenerateDocs,
            _ => CodeActionKind.GenerateTests,
        };
        var prompt = CodeActionPrompts.Build(kind, snapshot, tokenizer, model);
        var request = prompt.ToRequest();

        // The temperature setting applies to every generation; the answer's length stays the prompt's own.
        request = request with { Options = request.Options with { Temperature = settings?.Temperature ?? request.Options.Temperature } };
        request = WithSpeculation(request, settings);
        return new PreparedAction(request, raw => prompt.Interpret(raw) is { } result
            ? new ActionAnswer(result.Markdown, result.Edit is { } edit ? new SuggestionEdit(edit.NewText, edit.Range.Start, edit.Range.End) : null)
            : null);
    }

    /// <summary>
    /// The prompt settings the server's settings ask for; an unset <c>maxPromptTokens</c> takes the engine's prompt
    /// budget (<see cref="ModelInfo.PromptBudget"/>) where it has one, other unset values Prompting's defaults.
    /// </summary>
    public static PromptSettings PromptSettingsFor(ServerSettings settings, ModelInfo? model = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var defaults = new PromptSettings();
        return defaults with
        {
            Mode = PromptSettings.ParseMode(settings.PromptMode),
            MaxNewTokens = settings.MaxTokens ?? defaults.MaxNewTokens,
            MaxNewTokensSingleLine = Math.Min(settings.MaxTokens ?? defaults.MaxNewTokensSingleLine, defaults.MaxNewTokensSingleLine),
            Temperature = settings.Temperature ?? defaults.Temperature,
            MaxPromptTokens = settings.MaxPromptTokens ?? model?.PromptBudget ?? defaults.MaxPromptTokens,
        };
    }

    /// <summary>The `speculative` setting (auto | off) on a request; the in-process engine reads it, remote ones ignore it.</summary>
    private static GenerationRequest WithSpeculation(GenerationRequest request, ServerSettings? settings) =>
        request with { Options = request.Options with { Speculative = settings?.Speculative == "off" ? SpeculativeMode.Off : SpeculativeMode.Auto } };

    /// <summary>A file path for prompts (shown to the model as the file name); non-file URIs stay as they are.</summary>
    public static string PathOf(string uri) =>
        System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed) && parsed.IsFile ? parsed.LocalPath : uri;
}
