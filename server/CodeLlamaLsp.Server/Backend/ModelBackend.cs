// What the server holds once a model is loaded: the generator (in-process engine or remote) and the prompt
// builder that matches it. The server itself never writes prompt text: ISuggestionPrompts is a thin seam
// over the Prompting library, so tests can swap the model without touching LSP code.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Backend;

/// <summary>An editor position handed to the prompt builder: the whole text and the cursor offset in it.</summary>
public sealed record EditorContext(string Uri, string LanguageId, string Text, int Offset);

public enum CodeActionKind
{
    Explain,
    Fix,
    GenerateDocs,
    GenerateTests,
}

/// <summary>The selection a code action works on, with the diagnostics the editor reported inside it.</summary>
public sealed record CodeActionInput(CodeActionKind Kind, string Uri, string LanguageId, string Text, int Start, int End, IReadOnlyList<string> Diagnostics);

/// <summary>A prompt ready for the generator and the post-processing that turns the raw answer into editor text.</summary>
public sealed record PreparedPrompt(GenerationRequest Request, Func<string, string> Finish);

/// <summary>Builds prompts for one loaded model (its tokenizer, window and infilling support).</summary>
public interface ISuggestionPrompts
{
    PreparedPrompt Completion(EditorContext context, ServerSettings settings);

    PreparedPrompt CodeAction(CodeActionInput input, ServerSettings settings);
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
public sealed record LoadProgress(double Fraction, string Message);

/// <summary>Loads the model a settings record names. Throws with a readable message when it cannot.</summary>
public interface IModelBackendLoader
{
    Task<ModelBackend> LoadAsync(ServerSettings settings, IProgress<LoadProgress> progress, CancellationToken cancellationToken);
}
