// What a completion prompt carries from the builder to the engine and then to the post-processor:
// the ids and options for generation, and the facts about the cursor that shape the inserted text.
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Prompting;

/// <summary>The facts about the cursor that post-processing needs (captured at build time, so it needs no snapshot).</summary>
public sealed record CompletionContext
{
    public required int CursorOffset { get; init; }

    /// <summary>Text of the cursor line before the cursor.</summary>
    public required string LinePrefix { get; init; }

    /// <summary>Text of the cursor line after the cursor (without the line break).</summary>
    public required string LineSuffix { get; init; }

    /// <summary>The lines after the cursor line (a bounded number), to avoid repeating them.</summary>
    public required IReadOnlyList<string> NextLines { get; init; }

    /// <summary>True when the answer may span lines (empty line, or after a block opener with nothing to the right).</summary>
    public required bool MultiLine { get; init; }

    /// <summary>Indentation (in columns) of the block the completion belongs to; lines indented less end it.</summary>
    public required int BlockIndentColumns { get; init; }

    public required IndentStyle Indent { get; init; }

    /// <summary>"\n" or "\r\n", as the file uses.</summary>
    public required string LineEnding { get; init; }

    public required LanguageInfo Language { get; init; }

    /// <summary>
    /// Trailing spaces or tabs of the line prefix that the prompt left out (a prompt ending in a lone space
    /// token makes the model produce odd tokens); the model's answer usually starts with them again.
    /// </summary>
    public string HeldBackWhitespace { get; init; } = string.Empty;
}

/// <summary>A completion prompt ready for an <see cref="ITextGenerator"/>.</summary>
/// <param name="PromptIds">Ids with BOS, as the in-process engine takes them.</param>
/// <param name="PromptText">The same prompt as text (special ids written as their pieces), for text backends and snapshots.</param>
/// <param name="Mode">Instruct or Infill (never Auto: the builder resolved it).</param>
public sealed record CompletionPrompt(IReadOnlyList<int> PromptIds, string PromptText, GenerationOptions Options, CompletionContext Context, PromptMode Mode)
{
    public GenerationRequest ToRequest() => new(PromptIds, PromptText, Options);
}

/// <summary>Text to put in the document: replace <see cref="Replace"/> (usually the empty range at the cursor) with <see cref="Text"/>.</summary>
public sealed record CompletionEdit(string Text, TextRange Replace);
