// Picks snippets from other open documents of the same language for the completion prompt: the most
// recently edited documents first, and from each the window of lines most similar (Jaccard over
// identifiers) to the code just before the cursor.
namespace CodeLlamaLsp.Prompting;

/// <summary>A window of lines from another open document.</summary>
/// <param name="Score">Jaccard similarity of its identifiers with the code before the cursor.</param>
internal sealed record Snippet(string Path, string Text, double Score, DateTimeOffset LastEdited);

/// <summary>Chooses snippets; pure and deterministic.</summary>
internal static class SnippetSelector
{
    /// <summary>Documents looked at, most recently edited first; older ones rarely help and cost time.</summary>
    private const int MaxDocuments = 8;

    /// <summary>Lines scanned per document; a window search beyond this costs more than it gives.</summary>
    private const int MaxLinesPerDocument = 20_000;

    /// <summary>Below this similarity a snippet is noise.</summary>
    private const double MinScore = 0.05;

    /// <summary>
    /// Best windows, most similar first, at most <paramref name="maxSnippets"/>. The caller fits them into
    /// its token budget.
    /// </summary>
    public static IReadOnlyList<Snippet> Candidates(EditorSnapshot snapshot, string queryText, int windowLines, int maxSnippets)
    {
        var query = Identifiers(queryText);
        if (query.Count == 0 || maxSnippets <= 0 || windowLines <= 0)
        {
            return [];
        }

        var documents = snapshot.OtherDocuments
            .Where(d => string.Equals(d.LanguageId, snapshot.LanguageId, StringComparison.OrdinalIgnoreCase)
                && !string.Equals(d.Path, snapshot.Path, StringComparison.Ordinal)
                && !string.IsNullOrWhiteSpace(d.Text))
            .OrderByDescending(d => d.LastEdited)
            .ThenBy(d => d.Path, StringComparer.Ordinal)
            .Take(MaxDocuments);

        var found = new List<Snippet>();
        foreach (var document in documents)
        {
            if (BestWindow(document, query, windowLines) is { } snippet && snippet.Score >= MinScore)
            {
                found.Add(snippet);
            }
        }

        return found
            .OrderByDescending(s => s.Score)
            .ThenByDescending(s => s.LastEdited)
            .ThenBy(s => s.Path, StringComparer.Ordinal)
            .Take(maxSnippets)
            .ToList();
    }

    private static Snippet? BestWindow(OpenDocument document, HashSet<string> query, int windowLines)
    {
        var lines = new TextLines(document.Text);
        int count = Math.Min(lines.Count, MaxLinesPerDocument);
        var lineIdentifiers = new HashSet<string>[count];
        for (int i = 0; i < count; i++)
        {
            lineIdentifiers[i] = Identifiers(lines[i]);
        }

        int stride = Math.Max(1, windowLines / 2);
        double bestScore = -1;
        int bestStart = 0;
        for (int start = 0; start < count; start += stride)
        {
            var window = new HashSet<string>(StringComparer.Ordinal);
            int end = Math.Min(count, start + windowLines);
            for (int i = start; i < end; i++)
            {
                window.UnionWith(lineIdentifiers[i]);
            }

            double score = Jaccard(window, query);
            if (score > bestScore)
            {
                bestScore = score;
                bestStart = start;
            }

            if (end == count)
            {
                break;
            }
        }

        int first = bestStart;
        int last = Math.Min(count, bestStart + windowLines) - 1;
        while (first < last && TextLines.IsBlank(lines[first]))
        {
            first++;
        }

        while (last > first && TextLines.IsBlank(lines[last]))
        {
            last--;
        }

        return bestScore < 0 ? null : new Snippet(document.Path, lines.Join(first, last), bestScore, document.LastEdited);
    }

    public static double Jaccard(HashSet<string> a, HashSet<string> b)
    {
        if (a.Count == 0 || b.Count == 0)
        {
            return 0;
        }

        int shared = a.Count < b.Count ? a.Count(b.Contains) : b.Count(a.Contains);
        return (double)shared / (a.Count + b.Count - shared);
    }

    /// <summary>Identifier-like words of two or more characters.</summary>
    public static HashSet<string> Identifiers(string text)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        while (i < text.Length)
        {
            if (char.IsLetter(text[i]) || text[i] == '_')
            {
                int start = i;
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '_'))
                {
                    i++;
                }

                if (i - start >= 2)
                {
                    set.Add(text[start..i]);
                }
            }
            else
            {
                i++;
            }
        }

        return set;
    }
}
