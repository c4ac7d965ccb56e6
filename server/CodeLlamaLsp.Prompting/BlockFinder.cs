// Finds the code a code action works on: the selection widened to whole lines, or the block enclosing the
// cursor, found from indentation and braces (a header line with the deeper-indented lines under it, plus a
// closing-brace line and any attributes or decorators stacked above the header).
namespace CodeLlamaLsp.Prompting;

/// <summary>A block of whole lines.</summary>
/// <param name="Range">From the start of the first line to the end of the last line (without its line break).</param>
/// <param name="FirstLine">First line of the block, attributes and decorators included (0-based).</param>
/// <param name="HeaderLine">The line that opens the block (def/fn/class/if...), or <see cref="FirstLine"/>.</param>
/// <param name="LastLine">Last line of the block (0-based).</param>
/// <param name="Indent">Leading whitespace of the header line.</param>
public sealed record CodeBlock(TextRange Range, int FirstLine, int HeaderLine, int LastLine, string Indent);

/// <summary>Block detection by indentation and braces.</summary>
public static class BlockFinder
{
    /// <summary>The selection widened to whole lines if there is one, otherwise the block enclosing the cursor.</summary>
    public static CodeBlock Find(EditorSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var lines = new TextLines(snapshot.Text);
        if (snapshot.Selection is { IsEmpty: false } selection)
        {
            int first = lines.LineOf(selection.Start);
            int last = lines.LineOf(selection.End);

            // A selection that ends at the start of a line does not include that line.
            if (last > first && lines.LineStart(last) == selection.End)
            {
                last--;
            }

            return Make(lines, first, first, last);
        }

        return FindEnclosing(lines, snapshot.CursorOffset);
    }

    /// <summary>The block enclosing an offset: the nearest header above it whose body holds the offset's line.</summary>
    internal static CodeBlock FindEnclosing(TextLines lines, int offset)
    {
        int line = lines.LineOf(offset);
        line = NearestCodeLine(lines, line);
        if (line < 0)
        {
            return Make(lines, 0, 0, Math.Max(0, lines.Count - 1));
        }

        int header = OpensBlock(lines, line) && !IsClosing(lines[line]) ? line : HeaderAbove(lines, line);
        if (header < 0)
        {
            // Top-level code outside any block: the statement's own line.
            return Make(lines, line, line, line);
        }

        // A brace on a line of its own ("{" under "void Run()") belongs to the header above it.
        int bodyOwner = header;
        if (lines[header].Trim() == "{" && PreviousCodeLine(lines, header) is int signature and >= 0)
        {
            header = signature;
        }

        int last = BlockEnd(lines, bodyOwner);
        int first = header;
        while (PreviousCodeLine(lines, first) is int above and >= 0 && above == first - 1 && IsAttribute(lines[above]) && Columns(lines[above]) == Columns(lines[header]))
        {
            first = above;
        }

        return Make(lines, first, header, last);
    }

    private static CodeBlock Make(TextLines lines, int first, int header, int last) =>
        new(new TextRange(lines.LineStart(first), lines.LineEnd(last)), first, header, last, TextLines.LeadingWhitespace(lines[header]));

    private static int NearestCodeLine(TextLines lines, int line)
    {
        for (int i = line; i >= 0; i--)
        {
            if (!TextLines.IsBlank(lines[i]))
            {
                return i;
            }
        }

        for (int i = line + 1; i < lines.Count; i++)
        {
            if (!TextLines.IsBlank(lines[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private static int PreviousCodeLine(TextLines lines, int line)
    {
        for (int i = line - 1; i >= 0; i--)
        {
            if (!TextLines.IsBlank(lines[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private static int NextCodeLine(TextLines lines, int line)
    {
        for (int i = line + 1; i < lines.Count; i++)
        {
            if (!TextLines.IsBlank(lines[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>A line opens a block when the next code line is indented deeper (or it is "{" on its own line).</summary>
    private static bool OpensBlock(TextLines lines, int line)
    {
        int next = NextCodeLine(lines, line);
        return next >= 0 && Columns(lines[next]) > Columns(lines[line])
            || next >= 0 && lines[next].Trim() == "{" && Columns(lines[next]) == Columns(lines[line]);
    }

    /// <summary>The nearest line above that is indented less than <paramref name="line"/> and is not a closing line.</summary>
    private static int HeaderAbove(TextLines lines, int line)
    {
        int columns = Columns(lines[line]);
        if (IsClosing(lines[line]))
        {
            // A closing brace belongs to the block it closes: its header has the same indentation.
            for (int i = line - 1; i >= 0; i--)
            {
                if (!TextLines.IsBlank(lines[i]) && Columns(lines[i]) == columns && !IsClosing(lines[i]))
                {
                    return i;
                }
            }

            return -1;
        }

        for (int i = line - 1; i >= 0; i--)
        {
            if (!TextLines.IsBlank(lines[i]) && Columns(lines[i]) < columns && !IsClosing(lines[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The last line of the body under <paramref name="owner"/>, with the closing line at the owner's indentation.</summary>
    private static int BlockEnd(TextLines lines, int owner)
    {
        int columns = Columns(lines[owner]);
        int last = owner;
        for (int i = owner + 1; i < lines.Count; i++)
        {
            if (TextLines.IsBlank(lines[i]))
            {
                continue;
            }

            int indent = Columns(lines[i]);
            if (indent > columns || (indent == columns && lines[i].Trim() == "{" && i == owner + 1))
            {
                last = i;
                continue;
            }

            if (indent == columns && IsClosing(lines[i]))
            {
                last = i;
            }

            break;
        }

        return last;
    }

    private static bool IsClosing(string line)
    {
        string trimmed = line.TrimStart();
        return trimmed.Length > 0 && (BlockSyntax.IsCloseBracket(trimmed[0]) || trimmed == "end" || trimmed.StartsWith("end ", StringComparison.Ordinal));
    }

    /// <summary>Decorators and attributes stack above a header: @decorator, [Attribute], #[attribute].</summary>
    private static bool IsAttribute(string line)
    {
        string trimmed = line.TrimStart();
        return trimmed.StartsWith('@') || trimmed.StartsWith("#[", StringComparison.Ordinal) || (trimmed.StartsWith('[') && trimmed.EndsWith(']'));
    }

    /// <summary>Indentation width with a tab as four columns (only comparisons within one file matter).</summary>
    private static int Columns(string line) => IndentStyle.FourSpaces.Columns(TextLines.LeadingWhitespace(line));
}
