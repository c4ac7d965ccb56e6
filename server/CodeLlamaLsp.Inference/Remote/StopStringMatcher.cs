// Enforces stop strings on streamed text: the OpenAI API takes at most four, and a stop string can
// arrive split over several events, so text that might be the start of a stop string is held back
// until the next event shows whether it is.
namespace CodeLlamaLsp.Inference.Remote;

/// <summary>Cuts streamed text before the first stop string, holding back possible stop-string prefixes.</summary>
internal sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private readonly int _longest;
    private string _held = string.Empty;

    public StopStringMatcher(IEnumerable<string> stopStrings)
    {
        _stops = stopStrings.Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
        _longest = _stops.Length == 0 ? 0 : _stops.Max(s => s.Length);
    }

    /// <summary>True once a stop string was seen; later input is ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Takes new text and returns the part that is safe to show now.</summary>
    public string Push(string delta)
    {
        if (Stopped)
        {
            return string.Empty;
        }

        if (_stops.Length == 0)
        {
            return delta;
        }

        string text = _held + delta;
        int cut = FirstStopIndex(text);
        if (cut >= 0)
        {
            Stopped = true;
            _held = string.Empty;
            return text[..cut];
        }

        int hold = LongestStopPrefixAtEnd(text);
        _held = text[^hold..];
        return text[..^hold];
    }

    /// <summary>At the end of the stream, releases text held back as a possible stop-string start.</summary>
    public string Flush()
    {
        string rest = Stopped ? string.Empty : _held;
        _held = string.Empty;
        return rest;
    }

    private int FirstStopIndex(string text)
    {
        int first = -1;
        foreach (string stop in _stops)
        {
            int index = text.IndexOf(stop, StringComparison.Ordinal);
            if (index >= 0 && (first < 0 || index < first))
            {
                first = index;
            }
        }

        return first;
    }

    // The longest tail of the text that is a proper prefix of some stop string: it may still become one.
    private int LongestStopPrefixAtEnd(string text)
    {
        for (int length = Math.Min(text.Length, _longest - 1); length > 0; length--)
        {
            ReadOnlySpan<char> tail = text.AsSpan(text.Length - length);
            foreach (string stop in _stops)
            {
                if (stop.Length > length && stop.AsSpan(0, length).SequenceEqual(tail))
                {
                    return length;
                }
            }
        }

        return 0;
    }
}
