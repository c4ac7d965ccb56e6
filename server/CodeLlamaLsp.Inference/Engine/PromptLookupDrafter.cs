// Drafts the next tokens of an answer by prompt lookup (prompt-lookup-decoding; vLLM's ngram speculator):
// the last n tokens (n = 3, then 2, then 1) are looked up in the prompt and the answer so far, and the
// tokens that followed their latest earlier occurrence are proposed. Code actions mostly copy code they were
// shown (Fix, Generate documentation), so such drafts are often right, and a wrong one costs only the rows it
// adds to one verification pass (IDecodingSession.AdvanceWithDraft). The draft length adapts to how well
// drafts have fared: it doubles after a draft was accepted whole and halves after a rejection. Where the text
// does not repeat, chance matches of one token keep proposing wrong drafts, and even a two-row pass costs more
// than one row (much more on the CPU), so after a one-token draft fails drafting pauses for 1, 2, 4 ... up to
// MaxPause steps, until a draft is accepted again. Advance is the speculative step itself (draft, verify,
// adapt), shared by InProcessGenerator and bench.
namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Proposes drafts for one generation from its prompt and answer. Not thread-safe.</summary>
public sealed class PromptLookupDrafter
{
    /// <summary>The longest suffix looked up; longer matches predict better, shorter ones match more often.</summary>
    public const int MaxNgram = 3;

    /// <summary>The first draft length: the 8-token drafts, before any evidence.</summary>
    public const int InitialDraftLength = 8;

    /// <summary>The longest draft: on the GPU a pass of 16 rows should cost at most 1.3x one row (the prefill issue); beyond that rows stop being nearly free.</summary>
    public const int MaxDraftLength = 16;

    /// <summary>The longest pause in drafting after failed one-token drafts, in steps.</summary>
    public const int MaxPause = 16;

    private readonly List<int> _tokens;
    private int _pause; // steps the last pause lasted (0: none since the last acceptance)
    private int _stepsToSkip; // steps left in the current pause

    /// <summary>Starts from <paramref name="prompt"/>; <see cref="Append"/> adds each answer token as it is emitted.</summary>
    public PromptLookupDrafter(IEnumerable<int> prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        _tokens = [.. prompt];
    }

    /// <summary>How many tokens the next draft may hold (1..<see cref="MaxDraftLength"/>).</summary>
    public int DraftLength { get; private set; } = InitialDraftLength;

    /// <summary>Draft tokens verified so far (what <see cref="Record"/> was told).</summary>
    public int Drafted { get; private set; }

    /// <summary>Of <see cref="Drafted"/>, those the model accepted.</summary>
    public int Accepted { get; private set; }

    /// <summary>Adds a token of the answer (in order) to what later drafts are matched against.</summary>
    public void Append(int token) => _tokens.Add(token);

    /// <summary>
    /// Proposes up to min(<see cref="DraftLength"/>, <paramref name="limit"/>) tokens to follow the tokens so far, or
    /// none when the last 1..<see cref="MaxNgram"/> tokens occur nowhere earlier or drafting pauses (one call is one step).
    /// </summary>
    public int[] Draft(int limit)
    {
        int length = Math.Min(DraftLength, limit);
        if (length <= 0)
        {
            return [];
        }

        if (_stepsToSkip > 0)
        {
            _stepsToSkip--;
            return [];
        }

        for (int n = Math.Min(MaxNgram, _tokens.Count - 1); n >= 1; n--)
        {
            if (LatestEarlierMatch(n) is { } start)
            {
                return Continuation(start + n, length);
            }
        }

        return [];
    }

    /// <summary>
    /// One decoding step with speculation: appends <paramref name="token"/> to <paramref name="session"/> together with
    /// a draft of up to <paramref name="maxDraft"/> tokens (verified by <see cref="IDecodingSession.AdvanceWithDraft"/>),
    /// or alone through <see cref="IDecodingSession.Advance"/> when there is no draft, so a miss costs a plain step.
    /// Returns the ids chosen after it (the accepted draft and the model's next id) and adapts the draft length.
    /// <paramref name="token"/> must already be <see cref="Append"/>ed.
    /// </summary>
    public IReadOnlyList<int> Advance(IDecodingSession session, int token, int maxDraft)
    {
        ArgumentNullException.ThrowIfNull(session);
        var draft = Draft(maxDraft);
        if (draft.Length == 0)
        {
            return [session.Advance(token)];
        }

        var ids = session.AdvanceWithDraft(token, draft);
        Record(draft.Length, ids.Count - 1);
        return ids;
    }

    /// <summary>Adapts the draft length to a verification's outcome: <paramref name="accepted"/> of <paramref name="drafted"/>.</summary>
    public void Record(int drafted, int accepted)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(accepted);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(accepted, drafted);
        Drafted += drafted;
        Accepted += accepted;
        if (accepted == 0 && drafted == 1 && DraftLength == 1)
        {
            _pause = Math.Min(MaxPause, Math.Max(1, _pause * 2));
            _stepsToSkip = _pause;
        }
        else if (accepted > 0)
        {
            _pause = 0;
        }

        DraftLength = accepted == drafted
            ? Math.Min(MaxDraftLength, DraftLength * 2)
            : Math.Clamp(Math.Max(accepted + 1, DraftLength / 2), 1, MaxDraftLength);
    }

    /// <summary>Where the last <paramref name="n"/> tokens occurred before, latest first, with a token after it; null if never.</summary>
    private int? LatestEarlierMatch(int n)
    {
        int count = _tokens.Count;
        int suffix = count - n;

        // Starting at most at suffix - 1 keeps the suffix itself out and leaves at least one token to propose.
        for (int start = suffix - 1; start >= 0; start--)
        {
            int k = 0;
            while (k < n && _tokens[start + k] == _tokens[suffix + k])
            {
                k++;
            }

            if (k == n)
            {
                return start;
            }
        }

        return null;
    }

    /// <summary>
    /// <paramref name="length"/> tokens from <paramref name="from"/> on. Past the end it copies its own output, as LZ77
    /// does, so a repeating pattern is continued for the whole draft rather than up to where the text ends.
    /// </summary>
    private int[] Continuation(int from, int length)
    {
        int count = _tokens.Count;
        var draft = new int[length];
        for (int j = 0; j < length; j++)
        {
            int source = from + j;
            draft[j] = source < count ? _tokens[source] : draft[source - count];
        }

        return draft;
    }
}
