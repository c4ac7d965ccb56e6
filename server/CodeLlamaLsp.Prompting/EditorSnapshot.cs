// The immutable view of the editor that every prompt is built from. The server captures it when a request
// leaves its queue (after converting LSP positions to UTF-16 offsets), so prompting never sees LSP types.
namespace CodeLlamaLsp.Prompting;

/// <summary>A half-open range [Start, End) of UTF-16 offsets into a document's text.</summary>
public readonly record struct TextRange(int Start, int End)
{
    public int Length => End - Start;

    public bool IsEmpty => Start == End;

    /// <summary>True when the ranges share a character or touch (a diagnostic at the edge of a selection counts).</summary>
    public bool Touches(TextRange other) => Start <= other.End && other.Start <= End;
}

/// <summary>Diagnostic severities, numbered as LSP numbers them.</summary>
public enum DiagnosticSeverity
{
    Error = 1,
    Warning = 2,
    Information = 3,
    Hint = 4,
}

/// <summary>A diagnostic that the editor shows, with its range as offsets into the snapshot's text.</summary>
public sealed record DiagnosticInfo(string Message, DiagnosticSeverity Severity, TextRange Range);

/// <summary>Another open document: a source of snippets for the completion prompt.</summary>
/// <param name="LastEdited">When the user last changed it; the most recently edited documents are preferred.</param>
public sealed record OpenDocument(string Path, string LanguageId, string Text, DateTimeOffset LastEdited);

/// <summary>The document, the cursor (or selection) and what surrounds it, frozen at request time.</summary>
public sealed record EditorSnapshot
{
    /// <summary>Creates a snapshot; offsets are checked against the text so a bad conversion fails here, loudly.</summary>
    public EditorSnapshot(string text, string languageId, string path, int cursorOffset)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(languageId);
        ArgumentNullException.ThrowIfNull(path);
        if (cursorOffset < 0 || cursorOffset > text.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(cursorOffset), cursorOffset, $"Cursor offset must lie within the text of '{path}' (0..{text.Length}).");
        }

        Text = text;
        LanguageId = languageId;
        Path = path;
        CursorOffset = cursorOffset;
    }

    public string Text { get; }

    /// <summary>The LSP language id ("python", "csharp", "typescript", "rust", ...).</summary>
    public string LanguageId { get; }

    public string Path { get; }

    public int CursorOffset { get; }

    /// <summary>The selection, if any; code actions use it instead of the enclosing block.</summary>
    public TextRange? Selection
    {
        get;
        init
        {
            if (value is { } range && (range.Start < 0 || range.End > Text.Length || range.Start > range.End))
            {
                throw new ArgumentOutOfRangeException(nameof(Selection), range, $"Selection must lie within the text of '{Path}' (0..{Text.Length}) with Start <= End.");
            }

            field = value;
        }
    }

    /// <summary>Diagnostics the server found in or near the range of interest.</summary>
    public IReadOnlyList<DiagnosticInfo> Diagnostics { get; init; } = [];

    /// <summary>Other open documents; only those of the same language feed the prompt.</summary>
    public IReadOnlyList<OpenDocument> OtherDocuments { get; init; } = [];
}
