// The sentencepiece BPE encoding algorithm (bpe_model.cc), reproduced step for step so ids match the
// tokenizer the model was trained with: repeatedly merge the adjacent pair whose merged piece has the highest
// score, the leftmost pair on ties, then map leftovers to ids with byte fallback. Merges are looked up by
// (left, right) symbol ids in a table built once, rather than by hashing the merged text each time.
using System.Text;

namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>Encodes normalized text (spaces already "▁") into piece ids. Immutable and thread-safe.</summary>
internal sealed class SentencePieceBpeEncoder
{
    private const int NoSymbol = -1;

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly SentencePieceType[] _types;

    // Control, unknown and byte pieces, as sentencepiece's reserved_id_map_; with _mergeable, its PieceToId.
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeable;

    // A symbol's id is its piece id when its text is a mergeable piece (normal, user-defined, unused: the
    // pieces_ map merges look in). A single character that is no such piece but occurs inside one gets an
    // id past the vocabulary, so merges through it are still found. Other characters never merge (NoSymbol).
    private readonly int[] _bmpSymbolIds = new int[char.MaxValue + 1];
    private readonly Dictionary<int, int> _supplementarySymbolIds = [];

    // (left symbol id, right symbol id) -> id of the merged piece, for every way to split every mergeable piece.
    private readonly Dictionary<long, int> _merges = new(PairKeyComparer.Instance);

    // User-defined pieces by first character, longest first: they are matched verbatim and never merged.
    private readonly Dictionary<char, string[]> _userDefinedByFirstChar;

    // Characters that occur in no mergeable piece longer than one character. No merge can cross them,
    // so the text splits there into segments that encode independently with the same result.
    private readonly bool[] _isSegmentBoundary = new bool[char.MaxValue + 1];

    private readonly int[] _byteIds = new int[256];
    private readonly int _unknownId;
    private readonly bool _byteFallback;

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
            if (mergeable.TryGetValue(piece, out var first) || reserved.TryGetValue(piece, out first))
            {
                // sentencepiece refuses such a model too.
                throw new InvalidDataException($"piece '{piece}' appears twice (ids {first} and {id})");
            }

            (isMergeable ? mergeable : reserved).Add(piece, id);
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

        BuildSymbolIdsAndMerges(mergeable);

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

    private void BuildSymbolIdsAndMerges(Dictionary<string, int> mergeable)
    {
        Array.Fill(_bmpSymbolIds, NoSymbol);
        Array.Fill(_isSegmentBoundary, true);
        var nextPseudoId = _pieces.Length;
        foreach (var (piece, id) in mergeable)
        {
            foreach (var rune in piece.EnumerateRunes())
            {
                if (SymbolIdOf(rune.Value) == NoSymbol)
                {
                    var text = rune.ToString();
                    SetSymbolId(rune.Value, mergeable.TryGetValue(text, out var own) ? own : nextPseudoId++);
                }
            }

            if (piece.Length > 1)
            {
                foreach (var c in piece)
                {
                    _isSegmentBoundary[c] = false;
                }
            }
        }

        for (var c = 0xD800; c <= 0xDFFF; c++)
        {
            _isSegmentBoundary[c] = false;
        }

        foreach (var (piece, id) in mergeable)
        {
            for (var split = 1; split < piece.Length; split++)
            {
                if (char.IsLowSurrogate(piece[split]))
                {
                    continue;
                }

                var left = SymbolIdOfText(piece.AsSpan(0, split), mergeable);
                var right = SymbolIdOfText(piece.AsSpan(split), mergeable);
                if (left != NoSymbol && right != NoSymbol)
                {
                    _merges[PairKey(left, right)] = id;
                }
            }
        }
    }

    private int SymbolIdOfText(ReadOnlySpan<char> text, Dictionary<string, int> mergeable)
    {
        if (mergeable.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(text, out var id))
        {
            return id;
        }

        return Rune.DecodeFromUtf16(text, out var rune, out var consumed) == System.Buffers.OperationStatus.Done && consumed == text.Length
            ? SymbolIdOf(rune.Value)
            : NoSymbol;
    }

    private int SymbolIdOf(int codePoint) =>
        codePoint <= char.MaxValue ? _bmpSymbolIds[codePoint]
        : _supplementarySymbolIds.TryGetValue(codePoint, out var id) ? id : NoSymbol;

    private void SetSymbolId(int codePoint, int id)
    {
        if (codePoint <= char.MaxValue)
        {
            _bmpSymbolIds[codePoint] = id;
        }
        else
        {
            _supplementarySymbolIds[codePoint] = id;
        }
    }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

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
            var length = MatchUserDefined(text, pos, end, out var symbolId);
            var frozen = length > 0;
            if (!frozen)
            {
                var c = text[pos];
                if (char.IsHighSurrogate(c) && pos + 1 < end && char.IsLowSurrogate(text[pos + 1]))
                {
                    length = 2;
                    symbolId = SymbolIdOf(char.ConvertToUtf32(c, text[pos + 1]));
                }
                else
                {
                    length = 1;
                    symbolId = _bmpSymbolIds[c];
                }
            }

            symbols[count] = new Symbol { Start = pos, Length = length, Prev = count - 1, Next = count + 1, Id = symbolId, Frozen = frozen };
            pos += length;
        }

        symbols[count - 1].Next = -1;

        var agenda = state.Agenda;
        agenda.Clear();
        for (var i = 1; i < count; i++)
        {
            TryAddPair(symbols, i - 1, i, state);
        }

        while (agenda.TryPop(out var pair))
        {
            ref var left = ref symbols[pair.Left];
            ref var right = ref symbols[pair.Right];

            // Stale entry: one side was merged away or grew since the pair was queued.
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != pair.Length)
            {
                continue;
            }

            left.Length += right.Length;
            left.Id = pair.MergedId;
            left.Next = right.Next;
            if (right.Next >= 0)
            {
                symbols[right.Next].Prev = pair.Left;
            }

            right.Length = 0;
            TryAddPair(symbols, left.Prev, pair.Left, state);
            TryAddPair(symbols, pair.Left, left.Next, state);
        }

        for (var i = 0; i != -1; i = symbols[i].Next)
        {
            EmitSymbol(symbols[i].Id, text.AsSpan(symbols[i].Start, symbols[i].Length), state, output);
        }
    }

    private void TryAddPair(Symbol[] symbols, int left, int right, EncodeState state)
    {
        if (left == -1 || right == -1)
        {
            return;
        }

        ref var l = ref symbols[left];
        ref var r = ref symbols[right];
        if (l.Frozen || r.Frozen || l.Id == NoSymbol || r.Id == NoSymbol || !_merges.TryGetValue(PairKey(l.Id, r.Id), out var merged))
        {
            return;
        }

        state.Agenda.Push(new SymbolPair(_scores[merged], left, right, l.Length + r.Length, merged));
        if (_types[merged] == SentencePieceType.Unused)
        {
            // Remembered so the unused piece can be split back into what it was made of.
            state.UnusedMerges[merged] = (l.Id, r.Id);
        }
    }

    private void EmitSymbol(int symbolId, ReadOnlySpan<char> text, EncodeState state, List<int> output)
    {
        // sentencepiece's PieceToId: reserved pieces first, then mergeable ones, else <unk>.
        var id = symbolId >= 0 && symbolId < _pieces.Length ? symbolId
            : _reserved.TryGetValue(text, out var reservedId) ? reservedId
            : _unknownId;
        if (_types[id] == SentencePieceType.Unused && state.UnusedMerges.TryGetValue(id, out var parts))
        {
            EmitSymbol(parts.Left, TextOfSymbol(parts.Left), state, output);
            EmitSymbol(parts.Right, TextOfSymbol(parts.Right), state, output);
            return;
        }

        var isUnknown = _types[id] == SentencePieceType.Unknown;
        if (isUnknown && _byteFallback)
        {
            Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
            var written = Encoding.UTF8.GetBytes(text, utf8);
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

    private string TextOfSymbol(int symbolId)
    {
        if (symbolId < _pieces.Length)
        {
            return _pieces[symbolId];
        }

        // A character with an id past the vocabulary: rare, so a scan is fine.
        var bmp = Array.IndexOf(_bmpSymbolIds, symbolId);
        return bmp >= 0 ? ((char)bmp).ToString() : char.ConvertFromUtf32(_supplementarySymbolIds.First(kv => kv.Value == symbolId).Key);
    }

    private int MatchUserDefined(string text, int pos, int end, out int id)
    {
        id = NoSymbol;
        if (_userDefinedByFirstChar.Count == 0 || !_userDefinedByFirstChar.TryGetValue(text[pos], out var candidates))
        {
            return 0;
        }

        foreach (var candidate in candidates)
        {
            if (candidate.Length <= end - pos && text.AsSpan(pos, candidate.Length).SequenceEqual(candidate))
            {
                _mergeable.TryGetValue(candidate, out id);
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
        public int Id;
        public bool Frozen;
    }

    /// <summary>long's own hash (high ^ low) collides for most (left, right) pairs; this one mixes them.</summary>
    private sealed class PairKeyComparer : IEqualityComparer<long>
    {
        public static readonly PairKeyComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long obj) => (int)(((ulong)obj * 0x9E3779B97F4A7C15UL) >> 32);
    }

    private readonly record struct SymbolPair(float Score, int Left, int Right, int Length, int MergedId);

    /// <summary>
    /// A binary heap of candidate merges: highest score first, then the leftmost pair, as sentencepiece's
    /// SymbolPairComparator orders its agenda.
    /// </summary>
    private sealed class Agenda
    {
        private SymbolPair[] _items = new SymbolPair[64];
        private int _count;

        public void Clear() => _count = 0;

        public void Push(SymbolPair pair)
        {
            if (_count == _items.Length)
            {
                Array.Resize(ref _items, _items.Length * 2);
            }

            var i = _count++;
            while (i > 0)
            {
                var parent = (i - 1) >> 1;
                if (!Before(pair, _items[parent]))
                {
                    break;
                }

                _items[i] = _items[parent];
                i = parent;
            }

            _items[i] = pair;
        }

        public bool TryPop(out SymbolPair top)
        {
            if (_count == 0)
            {
                top = default;
                return false;
            }

            top = _items[0];
            var last = _items[--_count];
            var i = 0;
            while (true)
            {
                var child = (2 * i) + 1;
                if (child >= _count)
                {
                    break;
                }

                if (child + 1 < _count && Before(_items[child + 1], _items[child]))
                {
                    child++;
                }

                if (!Before(_items[child], last))
                {
                    break;
                }

                _items[i] = _items[child];
                i = child;
            }

            _items[i] = last;
            return true;
        }

        private static bool Before(in SymbolPair a, in SymbolPair b) =>
            a.Score > b.Score || (a.Score == b.Score && a.Left < b.Left);
    }

    /// <summary>Scratch space for one Encode call, so the encoder itself stays shareable across threads.</summary>
    private sealed class EncodeState
    {
        private Symbol[] _symbols = new Symbol[64];

        public Agenda Agenda { get; } = new();

        public Dictionary<int, (int Left, int Right)> UnusedMerges { get; } = [];

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
