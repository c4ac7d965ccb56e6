// What the server holds once a model is loaded: the generator (in-process engine or remote) and the prompt
// builder that matches it. The server itself never writes prompt text: ISuggestionPrompts is a thin seam
// over the Prompting library (PromptingSuggestions), so tests can swap the model without touching LSP code.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Prompting;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Backend;

/// <summary>An editor position handed to the prompt builder: the whole text, the cursor offset, other open files.</summary>
public sealed record EditorContext(string Uri, string LanguageId, string Text, int Offset)
{
    public IReadOnlyList<OpenDocument> OtherDocuments { get; init; } = [];
}

/// <summary>The code actions, as the server's commands name them.</summary>
public enum CodeLlamaAction
{
    Explain,
    Fix,
    GenerateDocs,
    GenerateTests,
}

/// <summary>The selection a code action works on, with the diagnostics the editor reported inside it.</summary>
public sealed record CodeActionInput(CodeLlamaAction Action, string Uri, string LanguageId, string Text, int Start, int End, IReadOnlyList<DiagnosticInfo> Diagnostics);

/// <summary>Replace [Start, End) of the document with Text (an insertion when Start == End).</summary>
public sealed record SuggestionEdit(string Text, int Start, int End);

/// <summary>A completion prompt and the post-processing that turns the raw answer into an edit (null: nothing to offer).</summary>
public sealed record PreparedCompletion(GenerationRequest Request, Func<string, SuggestionEdit?> Finish)
{
    /// <summary>True once the answer so far is complete (block ended, fence closed): generation stops early.</summary>
    public Func<string, bool>? IsFinished { get; init; }
}

/// <summary>What a code action's answer means: markdown to show (Explain) or an edit to apply.</summary>
public sealed record ActionAnswer(string? Markdown, SuggestionEdit? Edit);

public sealed record PreparedAction(GenerationRequest Request, Func<string, ActionAnswer?> Finish);

/// <summary>Builds prompts for one loaded model (its tokenizer, window and infilling support).</summary>
public interface ISuggestionPrompts
{
    PreparedCompletion Completion(EditorContext context, ServerSettings settings);

    PreparedAction CodeAction(CodeActionInput input, ServerSettings settings);
}

/// <summary>A loaded model: generator plus prompts. Disposing it frees the weights.</summary>
public sealed class ModelBackend : IDisposable
{
    private readonly IDisposable? _owner;

    public ModelBackend(string name, ITextGenerator generator, ISuggestionPrompts prompts, IDisposable? owner = null)
    {
        Name = name;
        Generator = generator;
        Prompts = prompts;
        _owner = owner;
    }

    public string Name { get; }

    public ITextGenerator Generator { get; }

    public ISuggestionPrompts Prompts { get; }

    public void Dispose() => _owner?.Dispose();
}

/// <summary>Progress of a load: a fraction in 0..1 and a line for the status bar.</summary>
public sealed record ModelLoadProgress(double Fraction, string Message);

/// <summary>Loads the model a settings record names. Throws with a readable message when it cannot.</summary>
public interface IModelBackendLoader
{
    Task<ModelBackend> LoadAsync(ServerSettings settings, IProgress<ModelLoadProgress> progress, CancellationToken cancellationToken);
}
