// Finds stop strings in streamed text. Text that could still turn into a stop string is held back, so a
// stop string spanning several tokens is never partly emitted; the text before it is the answer.
namespace CodeLlamaLsp.Inference.Sampling;

/// <summary>Filters a stream of text chunks against a set of stop strings.</summary>
public sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private string _pending = string.Empty;

    public StopStringMatcher(IReadOnlyList<string> stopStrings)
    {
        ArgumentNullException.ThrowIfNull(stopStrings);
        _stops = stopStrings.Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Set once a stop string has been seen; later input is ignored.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds newly decoded text; returns the text that is now safe to emit.</summary>
    public string Push(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (Stopped)
        {
            return string.Empty;
        }

        _pending += text;
        int stopAt = -1;
        foreach (var stop in _stops)
        {
            int i = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0 && (stopAt < 0 || i < stopAt))
            {
                stopAt = i;
            }
        }

        if (stopAt >= 0)
        {
            Stopped = true;
            var before = _pending[..stopAt];
            _pending = string.Empty;
            return before;
        }

        int hold = LongestSuffixThatStartsAStop();
        var emit = _pending[..(_pending.Length - hold)];
        _pending = _pending[(_pending.Length - hold)..];
        return emit;
    }

    /// <summary>Ends the stream: held-back text that never became a stop string is released.</summary>
    public string Flush()
    {
        var rest = Stopped ? string.Empty : _pending;
        _pending = string.Empty;
        return rest;
    }

    private int LongestSuffixThatStartsAStop()
    {
        int best = 0;
        foreach (var stop in _stops)
        {
            for (int length = Math.Min(stop.Length - 1, _pending.Length); length > best; length--)
            {
                if (_pending.AsSpan(_pending.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    best = length;
                    break;
                }
            }
        }

        return best;
    }
}
