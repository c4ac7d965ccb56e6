// The sentencepiece BPE encoding algorithm (bpe_model.cc), reproduced step for step so ids match the
// tokenizer the model was trained with: repeatedly merge the adjacent pair whose merged piece has the highest
// score, the leftmost pair on ties, then map leftovers to ids with byte fallback.
using System.Text;

namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>Encodes normalized text (spaces already "▁") into piece ids. Immutable and thread-safe.</summary>
internal sealed class SentencePieceBpeEncoder
{
    private const char SpaceSymbol = '\u2581';

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly SentencePieceType[] _types;

    // Pieces a merge may produce (normal, user-defined, unused), as sentencepiece's pieces_ map.
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeable;

    // Control, unknown and byte pieces, as sentencepiece's reserved_id_map_.
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved;

    // User-defined pieces by first character, longest first: they are matched verbatim and never merged.
    private readonly Dictionary<char, string[]> _userDefinedByFirstChar;

    // Characters that occur in no mergeable piece longer than one character. No merge can cross them,
    // so the text splits there into segments that encode independently with the same result.
    private readonly bool[] _isSegmentBoundary = new bool[char.MaxValue + 1];

    private readonly int[] _byteIds = new int[256];
    private readonly int _unknownId;
    private readonly bool _byteFallback;
    private readonly bool _hasUnusedPieces;

    public SentencePieceBpeEncoder(SentencePieceModel model, int unknownId)
    {
        _pieces = [.. model.Pieces];
        _scores = [.. model.Scores];
        _types = [.. model.Types];
        _unknownId = unknownId;
        _byteFallback = model.ByteFallback;

        var mergeable = new Dictionary<string, int>(StringComparer.Ordinal);
        var reserved = new Dictionary<string, int>(StringComparer.Ordinal);
        var userDefined = new List<string>();
        for (var id = 0; id < _pieces.Length; id++)
        {
            var piece = _pieces[id];
            var isMergeable = _types[id] is SentencePieceType.Normal or SentencePieceType.UserDefined or SentencePieceType.Unused;

            // sentencepiece refuses a model with duplicate pieces too.
            if (!(isMergeable ? mergeable : reserved).TryAdd(piece, id))
            {
                throw new InvalidDataException($"piece '{piece}' appears twice (ids {(isMergeable ? mergeable : reserved)[piece]} and {id})");
            }

            _hasUnusedPieces |= _types[id] == SentencePieceType.Unused;
            if (_types[id] == SentencePieceType.UserDefined)
            {
                userDefined.Add(piece);
            }
        }

        _mergeable = mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        _reserved = reserved.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefinedByFirstChar = userDefined
            .GroupBy(p => p[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Length).ToArray());

        Array.Fill(_isSegmentBoundary, true);
        foreach (var piece in mergeable.Keys.Where(p => p.Length > 1))
        {
            foreach (var c in piece)
            {
                _isSegmentBoundary[c] = false;
            }
        }

        for (var c = 0xD800; c <= 0xDFFF; c++)
        {
            _isSegmentBoundary[c] = false;
        }

        if (_byteFallback)
        {
            for (var b = 0; b < 256; b++)
            {
                var piece = $"<0x{b:X2}>";
                if (!reserved.TryGetValue(piece, out _byteIds[b]) || _types[_byteIds[b]] != SentencePieceType.Byte)
                {
                    throw new InvalidDataException($"byte fallback is on but byte piece {piece} is missing");
                }
            }
        }
    }

    /// <summary>Appends the ids of already-normalized text to <paramref name="output"/>.</summary>
    public void Encode(string normalized, List<int> output)
    {
        var state = new EncodeState();
        var segmentStart = 0;
        for (var i = 0; i < normalized.Length; i++)
        {
            if (_isSegmentBoundary[normalized[i]])
            {
                EncodeSegment(normalized, segmentStart, i, state, output);
                EncodeSegment(normalized, i, i + 1, state, output);
                segmentStart = i + 1;
            }
        }

        EncodeSegment(normalized, segmentStart, normalized.Length, state, output);
    }

    private void EncodeSegment(string text, int begin, int end, EncodeState state, List<int> output)
    {
        if (begin >= end)
        {
            return;
        }

        // Split into characters (a surrogate pair is one character); user-defined pieces stay whole and frozen.
        var symbols = state.SymbolsFor(end - begin);
        var count = 0;
        for (var pos = begin; pos < end; count++)
        {
            var length = MatchUserDefined(text, pos, end);
            var frozen = length > 0;
            if (!frozen)
            {
                length = char.IsHighSurrogate(text[pos]) && pos + 1 < end && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
            }

            symbols[count] = new Symbol { Start = pos, Length = length, Prev = count - 1, Next = count + 1, Frozen = frozen };
            pos += length;
        }

        symbols[count - 1].Next = -1;

        var agenda = state.Agenda;
        agenda.Clear();
        for (var i = 1; i < count; i++)
        {
            TryAddPair(text, symbols, i - 1, i, state);
        }

        while (agenda.TryDequeue(out var pair, out _))
        {
            ref var left = ref symbols[pair.Left];
            ref var right = ref symbols[pair.Right];

            // Stale entry: one side was merged away or grew since the pair was queued.
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != pair.Length)
            {
                continue;
            }

            left.Length += right.Length;
            left.Next = right.Next;
            if (right.Next >= 0)
            {
                symbols[right.Next].Prev = pair.Left;
            }

            right.Length = 0;
            TryAddPair(text, symbols, left.Prev, pair.Left, state);
            TryAddPair(text, symbols, pair.Left, left.Next, state);
        }

        for (var i = 0; i != -1; i = symbols[i].Next)
        {
            EmitSymbol(text.AsSpan(symbols[i].Start, symbols[i].Length), state, output);
        }
    }

    private void TryAddPair(string text, Symbol[] symbols, int left, int right, EncodeState state)
    {
        if (left == -1 || right == -1 || symbols[left].Frozen || symbols[right].Frozen)
        {
            return;
        }

        var length = symbols[left].Length + symbols[right].Length;
        var merged = text.AsSpan(symbols[left].Start, length);
        if (!_mergeable.TryGetValue(merged, out var id))
        {
            return;
        }

        state.Agenda.Enqueue(new SymbolPair(left, right, length), new PairPriority(_scores[id], left));
        if (_types[id] == SentencePieceType.Unused)
        {
            // Remembered so the unused piece can be split back into what it was made of.
            state.UnusedMerges[_pieces[id]] = (
                text.Substring(symbols[left].Start, symbols[left].Length),
                text.Substring(symbols[right].Start, symbols[right].Length));
        }
    }

    private void EmitSymbol(ReadOnlySpan<char> symbol, EncodeState state, List<int> output)
    {
        var id = PieceToId(symbol);
        if (_hasUnusedPieces && _types[id] == SentencePieceType.Unused
            && state.UnusedMerges.TryGetValue(_pieces[id], out var parts))
        {
            EmitSymbol(parts.Left, state, output);
            EmitSymbol(parts.Right, state, output);
            return;
        }

        var isUnknown = _types[id] == SentencePieceType.Unknown;
        if (isUnknown && _byteFallback)
        {
            Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(symbol.Length)];
            var written = Encoding.UTF8.GetBytes(symbol, utf8);
            foreach (var b in utf8[..written])
            {
                output.Add(_byteIds[b]);
            }
        }
        else if (!(isUnknown && state.PreviousWasUnknown))
        {
            // Without byte fallback sentencepiece folds a run of unknown characters into one <unk>.
            output.Add(id);
        }

        state.PreviousWasUnknown = isUnknown;
    }

    private int PieceToId(ReadOnlySpan<char> piece) =>
        _reserved.TryGetValue(piece, out var id) ? id
        : _mergeable.TryGetValue(piece, out id) ? id
        : _unknownId;

    private int MatchUserDefined(string text, int pos, int end)
    {
        if (_userDefinedByFirstChar.Count == 0 || !_userDefinedByFirstChar.TryGetValue(text[pos], out var candidates))
        {
            return 0;
        }

        foreach (var candidate in candidates)
        {
            if (candidate.Length <= end - pos && text.AsSpan(pos, candidate.Length).SequenceEqual(candidate))
            {
                return candidate.Length;
            }
        }

        return 0;
    }

    private struct Symbol
    {
        public int Start;
        public int Length;
        public int Prev;
        public int Next;
        public bool Frozen;
    }

    private readonly record struct SymbolPair(int Left, int Right, int Length);

    private readonly record struct PairPriority(float Score, int Left);

    /// <summary>Highest score first, then the leftmost pair (sentencepiece's SymbolPairComparator).</summary>
    private sealed class PairPriorityComparer : IComparer<PairPriority>
    {
        public static readonly PairPriorityComparer Instance = new();

        public int Compare(PairPriority x, PairPriority y)
        {
            var byScore = y.Score.CompareTo(x.Score);
            return byScore != 0 ? byScore : x.Left.CompareTo(y.Left);
        }
    }

    /// <summary>Scratch space for one Encode call, so the encoder itself stays shareable across threads.</summary>
    private sealed class EncodeState
    {
        private Symbol[] _symbols = new Symbol[64];

        public PriorityQueue<SymbolPair, PairPriority> Agenda { get; } = new(PairPriorityComparer.Instance);

        public Dictionary<string, (string Left, string Right)> UnusedMerges { get; } = new(StringComparer.Ordinal);

        public bool PreviousWasUnknown { get; set; }

        public Symbol[] SymbolsFor(int maxCount)
        {
            if (_symbols.Length < maxCount)
            {
                _symbols = new Symbol[Math.Max(maxCount, _symbols.Length * 2)];
            }

            return _symbols;
        }
    }
}
