// Shapes a generated documentation comment into the language's doc-comment style and places it: above the
// block (attributes included) for comment styles, as the first statement of the body for Python docstrings.
namespace CodeLlamaLsp.Prompting;

/// <summary>Doc-comment normalization and placement.</summary>
internal static class DocComments
{
    /// <summary>The comment's lines without indentation, in the language's style; empty when the answer holds no comment text.</summary>
    public static List<string> Normalize(string raw, LanguageInfo language)
    {
        var lines = raw.Split('\n').Select(l => l.TrimEnd()).ToList();
        var result = language.DocStyle switch
        {
            DocCommentStyle.TripleSlash => PrefixedRun(lines, "///"),
            DocCommentStyle.LineComment => PrefixedRun(lines, language.LineComment),
            DocCommentStyle.SlashStarStar => Delimited(lines, "/**", "*/", l => l.StartsWith('*') ? " " + l : " * " + l, "/**", " */"),
            DocCommentStyle.Docstring => Docstring(lines),
            _ => [],
        };

        // A comment with nothing but its markers says nothing.
        bool hasText = result.Any(l => l.Trim().Trim('/', '*', '#', '"', '\'', '-', ' ').Length > 0);
        return hasText ? result : [];
    }

    /// <summary>The run of lines that start with the prefix, or every text line with the prefix added.</summary>
    private static List<string> PrefixedRun(List<string> lines, string prefix)
    {
        int first = lines.FindIndex(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal));
        if (first >= 0)
        {
            return lines.Skip(first).TakeWhile(l => l.TrimStart().StartsWith(prefix, StringComparison.Ordinal)).Select(l => l.TrimStart()).ToList();
        }

        return Trimmed(lines).Select(l => l.Length == 0 ? prefix : prefix + " " + l.Trim()).ToList();
    }

    /// <summary>A delimited block comment from the answer, or the answer's lines wrapped in one.</summary>
    private static List<string> Delimited(List<string> lines, string open, string close, Func<string, string> middle, string openLine, string closeLine)
    {
        int start = lines.FindIndex(l => l.TrimStart().StartsWith(open, StringComparison.Ordinal));
        if (start >= 0)
        {
            int end = lines.FindIndex(start, l => l.TrimEnd().EndsWith(close, StringComparison.Ordinal));
            if (end < 0)
            {
                return [];
            }

            var block = lines.GetRange(start, end - start + 1).Select(l => l.Trim()).ToList();
            if (block.Count == 1)
            {
                return block;
            }

            return [block[0], .. block.Skip(1).Take(block.Count - 2).Select(middle), closeLine];
        }

        var body = Trimmed(lines).Select(l => l.Trim()).ToList();
        return body.Count == 0 ? [] : [openLine, .. body.Select(l => l.Length == 0 ? " *" : " * " + l), closeLine];
    }

    /// <summary>A triple-quoted docstring, its inner lines keeping their relative indentation.</summary>
    private static List<string> Docstring(List<string> lines)
    {
        int start = lines.FindIndex(l => l.TrimStart().StartsWith("\"\"\"", StringComparison.Ordinal) || l.TrimStart().StartsWith("'''", StringComparison.Ordinal));
        if (start < 0)
        {
            var body = Trimmed(lines);
            return body.Count == 0 ? [] : ["\"\"\"" + body[0].Trim(), .. Dedent(body.Skip(1).ToList()), "\"\"\""];
        }

        string quote = lines[start].TrimStart()[..3];
        string opening = lines[start].Trim();
        if (opening.Length > 3 && opening.EndsWith(quote, StringComparison.Ordinal))
        {
            return [opening];
        }

        int end = lines.FindIndex(start + 1, l => l.TrimEnd().EndsWith(quote, StringComparison.Ordinal));
        if (end < 0)
        {
            return [];
        }

        var inner = Dedent(lines.GetRange(start + 1, end - start).ToList());
        return [opening, .. inner];
    }

    private static List<string> Trimmed(List<string> lines)
    {
        var list = lines.SkipWhile(TextLines.IsBlank).ToList();
        while (list.Count > 0 && TextLines.IsBlank(list[^1]))
        {
            list.RemoveAt(list.Count - 1);
        }

        return list;
    }

    private static List<string> Dedent(List<string> lines)
    {
        var nonBlank = lines.Where(l => !TextLines.IsBlank(l)).ToList();
        int least = nonBlank.Count == 0 ? 0 : nonBlank.Min(l => TextLines.LeadingWhitespace(l).Length);
        return lines.Select(l => TextLines.IsBlank(l) ? string.Empty : l[least..]).ToList();
    }

    /// <summary>Where and how the comment goes into the document.</summary>
    public static TextEdit Insertion(List<string> comment, CodeBlock block, TextLines lines, LanguageInfo language, IndentStyle style)
    {
        string eol = lines.LineEnding;
        if (language.DocStyle == DocCommentStyle.Docstring && SignatureEnd(block, lines) is int signature and >= 0)
        {
            string bodyIndent = BodyIndent(block, lines, signature, style);
            string text = string.Concat(comment.Select(l => (l.Length == 0 ? string.Empty : bodyIndent + l) + eol));
            if (signature + 1 < lines.Count)
            {
                int at = lines.LineStart(signature + 1);
                return new TextEdit(new TextRange(at, at), text);
            }

            int end = lines.LineEnd(signature);
            return new TextEdit(new TextRange(end, end), eol + text.TrimEnd('\r', '\n'));
        }

        var above = language.DocStyle == DocCommentStyle.Docstring
            ? comment.Select(l => language.LineComment + (l.Length == 0 ? string.Empty : " " + l.Trim('"').Trim()))
            : comment;
        int start = lines.LineStart(block.FirstLine);
        return new TextEdit(new TextRange(start, start), string.Concat(above.Select(l => block.Indent + l + eol)));
    }

    /// <summary>The line ending the header's signature (the first ending with ':'), or -1 when the block has no such header.</summary>
    private static int SignatureEnd(CodeBlock block, TextLines lines)
    {
        for (int i = block.HeaderLine; i <= block.LastLine; i++)
        {
            string code = lines[i];
            int comment = code.IndexOf(" #", StringComparison.Ordinal);
            if ((comment >= 0 ? code[..comment] : code).TrimEnd().EndsWith(':'))
            {
                return i;
            }
        }

        return -1;
    }

    private static string BodyIndent(CodeBlock block, TextLines lines, int signature, IndentStyle style)
    {
        for (int i = signature + 1; i <= block.LastLine; i++)
        {
            if (!TextLines.IsBlank(lines[i]))
            {
                return TextLines.LeadingWhitespace(lines[i]);
            }
        }

        return block.Indent + style.Unit;
    }
}
