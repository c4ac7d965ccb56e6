// Test markup for editor positions: "‸" marks the cursor, "[|" and "|]" a selection. Named carets
// ("‸(mid)", "‸(eol)", ...) let one source text carry several cursor positions; Parse keeps one and drops the rest.
using System.Text.RegularExpressions;

namespace CodeLlamaLsp.Prompting.Tests;

internal static partial class Markup
{
    [GeneratedRegex(@"‸(\([a-z]+\))?")]
    private static partial Regex AnyCaret();

    /// <summary>The snapshot for markup with one caret (named <paramref name="caret"/>, or the bare "‸").</summary>
    public static EditorSnapshot Parse(string markup, string languageId = "python", string path = "src/main.py", string caret = "")
    {
        string marker = caret.Length == 0 ? "‸" : "‸(" + caret + ")";
        int cursor = -1;
        var text = new System.Text.StringBuilder();
        int selectionStart = -1, selectionEnd = -1;
        int i = 0;
        while (i < markup.Length)
        {
            var match = AnyCaret().Match(markup, i);
            int next = match.Success ? match.Index : markup.Length;
            int selectionOpen = markup.IndexOf("[|", i, StringComparison.Ordinal);
            int selectionClose = markup.IndexOf("|]", i, StringComparison.Ordinal);
            int stop = new[] { next, selectionOpen < 0 ? int.MaxValue : selectionOpen, selectionClose < 0 ? int.MaxValue : selectionClose }.Min();
            text.Append(markup, i, stop - i);
            if (stop == markup.Length)
            {
                break;
            }

            if (stop == selectionOpen)
            {
                selectionStart = text.Length;
                i = stop + 2;
            }
            else if (stop == selectionClose)
            {
                selectionEnd = text.Length;
                i = stop + 2;
            }
            else
            {
                if (match.Value == marker)
                {
                    cursor = text.Length;
                }

                i = stop + match.Length;
            }
        }

        if (cursor < 0)
        {
            cursor = selectionStart >= 0 ? selectionStart : throw new ArgumentException($"markup has no caret '{marker}'");
        }

        var snapshot = new EditorSnapshot(text.ToString(), languageId, path, cursor);
        return selectionStart >= 0 ? snapshot with { Selection = new TextRange(selectionStart, selectionEnd) } : snapshot;
    }
}
