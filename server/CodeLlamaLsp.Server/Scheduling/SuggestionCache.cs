// Remembers the last suggestion per document so that typing through it is answered without generating:
// if the new text equals the old one plus the first characters of the suggestion, the rest is still valid.
namespace CodeLlamaLsp.Server.Scheduling;

public sealed class SuggestionCache
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public void Store(string uri, string text, int offset, string suggestion)
    {
        lock (_lock)
        {
            _entries[uri] = new Entry(text, offset, suggestion);
        }
    }

    public void Forget(string uri)
    {
        lock (_lock)
        {
            _entries.Remove(uri);
        }
    }

    /// <summary>
    /// The rest of the cached suggestion when the text before the cursor is the cached prefix plus a start of
    /// the suggestion and the text after the cursor is unchanged; null otherwise.
    /// </summary>
    public string? TryReuse(string uri, string text, int offset)
    {
        ArgumentNullException.ThrowIfNull(text);
        Entry entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(uri, out entry!))
            {
                return null;
            }
        }

        int typed = offset - entry.Offset;
        if (typed < 0 || typed >= entry.Suggestion.Length)
        {
            return null;
        }

        int suffixLength = entry.Text.Length - entry.Offset;
        if (text.Length - offset != suffixLength
            || string.CompareOrdinal(text, offset, entry.Text, entry.Offset, suffixLength) != 0
            || string.CompareOrdinal(text, 0, entry.Text, 0, entry.Offset) != 0
            || string.CompareOrdinal(text, entry.Offset, entry.Suggestion, 0, typed) != 0)
        {
            return null;
        }

        return entry.Suggestion[typed..];
    }

    private sealed record Entry(string Text, int Offset, string Suggestion);
}
