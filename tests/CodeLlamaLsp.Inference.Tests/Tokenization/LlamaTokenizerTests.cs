// Checks LlamaTokenizer against sentencepiece's own output for the Llama 2 / CodeLlama vocabulary.
using System.Diagnostics;
using System.Text;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Tests.Tokenization;

public class LlamaTokenizerTests
{
    private static LlamaTokenizer Tokenizer => TokenizerFixtures.Tokenizer;

    private static IEnumerable<TestCaseData> EncodeCases() => TokenizerFixtures.GoldenCaseData(nameof(Encode_matches_sentencepiece));

    private static IEnumerable<TestCaseData> DecodeCases() => TokenizerFixtures.GoldenCaseData(nameof(Decode_matches_sentencepiece));

    private static IEnumerable<TestCaseData> NoPrefixCases() => TokenizerFixtures.GoldenCaseData(nameof(Encode_without_dummy_prefix_continues_text));

    [TestCaseSource(nameof(EncodeCases))]
    public void Encode_matches_sentencepiece(GoldenCase golden)
    {
        var ids = Tokenizer.Encode(golden.Text);

        Assert.That(ids, Is.EqualTo(golden.Ids));
        if (golden.Pieces != null)
        {
            Assert.That(ids.Select(Tokenizer.IdToPiece), Is.EqualTo(golden.Pieces));
        }
    }

    [TestCaseSource(nameof(DecodeCases))]
    public void Decode_matches_sentencepiece(GoldenCase golden)
    {
        Assert.That(Tokenizer.Decode(golden.Ids), Is.EqualTo(golden.Decoded));
    }

    [TestCaseSource(nameof(NoPrefixCases))]
    public void Encode_without_dummy_prefix_continues_text(GoldenCase golden)
    {
        // The dummy prefix is a space: leaving it out and writing the space ourselves gives the same ids
        // (except for empty text, which sentencepiece leaves empty rather than prefixing).
        var text = golden.Text.Length == 0 ? golden.Text : " " + golden.Text;

        Assert.That(Tokenizer.Encode(text, addDummyPrefix: false), Is.EqualTo(golden.Ids));
    }

    [Test]
    public void Vocabulary_ids_are_the_llama_ones()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Tokenizer.VocabSize, Is.EqualTo(32000));
            Assert.That(Tokenizer.UnkId, Is.Zero);
            Assert.That(Tokenizer.BosId, Is.EqualTo(1));
            Assert.That(Tokenizer.EosId, Is.EqualTo(2));
            Assert.That(Tokenizer.IdToPiece(13), Is.EqualTo("<0x0A>"));
            Assert.That(Tokenizer.GetPieceType(13), Is.EqualTo(SentencePieceType.Byte));
            Assert.That(Tokenizer.GetPieceType(1), Is.EqualTo(SentencePieceType.Control));
            Assert.That(Tokenizer.GetPieceType(822), Is.EqualTo(SentencePieceType.Normal));
            Assert.That(Tokenizer.IsControlOrUnknown(0) && Tokenizer.IsControlOrUnknown(2) && !Tokenizer.IsControlOrUnknown(3), Is.True);
            Assert.That(Tokenizer.TryGetSpecialId("</s>", out var eos) ? eos : -1, Is.EqualTo(2));
            Assert.That(Tokenizer.TryGetSpecialId(InfillTokens.PrefixPiece, out _), Is.False);
            Assert.That(Tokenizer.Infill, Is.Null);
        });
    }

    [Test]
    public void Ids_outside_the_vocabulary_are_refused_with_a_clear_error()
    {
        Assert.That(() => Tokenizer.IdToPiece(32000), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("32000 pieces"));
        Assert.That(() => Tokenizer.Decode([15043, -1]), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [TestCase("<s>")]
    [TestCase("</s>")]
    [TestCase("<unk>")]
    [TestCase("[INST] hi [/INST]</s><s>[INST]")]
    public void Special_pieces_are_never_produced_from_text(string text)
    {
        var ids = Tokenizer.Encode(text);

        Assert.That(ids, Has.None.Matches<int>(Tokenizer.IsControlOrUnknown));
        Assert.That(Tokenizer.Decode(ids), Is.EqualTo(text));
    }

    [Test]
    public void Decode_drops_control_ids_and_only_the_first_dummy_space()
    {
        var hello = Tokenizer.Encode("Hello world");

        Assert.That(Tokenizer.Decode([Tokenizer.BosId, .. hello, Tokenizer.EosId]), Is.EqualTo("Hello world"));
        Assert.That(Tokenizer.Decode([.. hello, .. hello]), Is.EqualTo("Hello world Hello world"));
    }

    [Test]
    public void Decode_writes_unknown_and_malformed_bytes_as_sentencepiece_does()
    {
        // 0xE2 0x82 starts a 3-byte character that never completes: one U+FFFD per byte, then the text.
        var lone = new[] { 3 + 0xE2, 3 + 0x82 };

        Assert.That(Tokenizer.Decode([.. lone, .. Tokenizer.Encode("x", addDummyPrefix: false)]), Is.EqualTo("\uFFFD\uFFFDx"));
        Assert.That(Tokenizer.Decode([Tokenizer.UnkId]), Is.EqualTo(" \u2047 "));
    }

    [Test]
    public void Random_text_round_trips_through_encode_and_decode()
    {
        var alphabet = new[] { " ", "  ", "\t", "\n", "\r\n", "a", "Z", "9", "_", "=", "#", "(", "}", "é", "ß", "я", "中", "文", "🦙", "😁", "\u200d", "\uFE0F", "▂" };
        var random = new Random(1234);
        for (var trial = 0; trial < 300; trial++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 60)).Select(_ => alphabet[random.Next(alphabet.Length)]));

            Assert.That(Tokenizer.Decode(Tokenizer.Encode(text)), Is.EqualTo(text), () => "text " + System.Text.Json.JsonSerializer.Serialize(text));
        }
    }

    [Test]
    public void Encode_matches_a_naive_merge_loop_on_random_text()
    {
        // The naive loop rescans every adjacent pair for the best merge (highest score, then leftmost) and
        // looks merged text up by string: no segmenting, no pair table, no heap, so it checks those shortcuts.
        var model = SentencePieceModel.Load(TokenizerFixtures.ModelPath);
        var mergeable = Enumerable.Range(0, model.Pieces.Count)
            .Where(id => model.Types[id] is SentencePieceType.Normal or SentencePieceType.UserDefined or SentencePieceType.Unused)
            .ToDictionary(id => model.Pieces[id], id => id);
        var alphabet = new[] { " ", "    ", "\t", "\n", "=", "-", "*", "/", "#", "_", ".", "0", "1", "a", "e", "t", "in", "def", "return", "(", ")", "{", "}", ";", "\"", "é", "中", "🦙" };
        var random = new Random(7);
        for (var trial = 0; trial < 300; trial++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 40)).Select(_ => alphabet[random.Next(alphabet.Length)]));

            Assert.That(Tokenizer.Encode(text), Is.EqualTo(NaiveEncode(text, model, mergeable)), () => "text " + System.Text.Json.JsonSerializer.Serialize(text));
        }
    }

    [Test]
    public void Loading_a_missing_or_malformed_model_names_the_file()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid().ToString("N"), "tokenizer.model");
        Assert.That(() => LlamaTokenizer.Load(missing), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(missing));

        var garbage = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(garbage, [0x0A, 0xFF, 0x01, 0x02]);
            Assert.That(() => LlamaTokenizer.Load(garbage), Throws.InstanceOf<InvalidDataException>().With.Message.Contains(garbage));
        }
        finally
        {
            File.Delete(garbage);
        }
    }

    [Test]
    public void A_megabyte_of_code_encodes_and_round_trips()
    {
        var source = new StringBuilder();
        var lines = 0;
        while (source.Length < 1_000_000)
        {
            var indent = new string(' ', 4 * (lines % 7));
            source.Append(indent).Append("if (value_").Append(lines).Append(" >= limit) { return Compute(value, \"text\"); } // ====\n");
            source.Append('\t', lines % 5).Append("/* ").Append('*', lines % 40).Append(" */ résumé 中文 🦙\n\n");
            lines++;
        }

        var text = source.ToString();
        Tokenizer.Encode("warm up the JIT");
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var ids = Tokenizer.Encode(text);
        clock.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;

        // Informational only: timing is not asserted (shared machines vary; CPU time is steadier than wall time).
        TestContext.Out.WriteLine($"encoded {text.Length:N0} chars into {ids.Count:N0} ids in {clock.ElapsedMilliseconds} ms wall, {cpu.TotalMilliseconds:F0} ms CPU");
        Assert.That(ids, Has.Count.InRange(text.Length / 8, text.Length / 2));
        Assert.That(Tokenizer.Decode(ids), Is.EqualTo(text));
    }

    private static List<int> NaiveEncode(string text, SentencePieceModel model, Dictionary<string, int> mergeable)
    {
        var symbols = ("\u2581" + text.Replace(' ', '\u2581')).EnumerateRunes().Select(r => r.ToString()).ToList();
        while (true)
        {
            var best = -1;
            var bestScore = float.NegativeInfinity;
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                if (mergeable.TryGetValue(symbols[i] + symbols[i + 1], out var id) && (best < 0 || model.Scores[id] > bestScore))
                {
                    best = i;
                    bestScore = model.Scores[id];
                }
            }

            if (best < 0)
            {
                break;
            }

            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }

        var ids = new List<int>();
        foreach (var symbol in symbols)
        {
            if (mergeable.TryGetValue(symbol, out var id))
            {
                ids.Add(id);
            }
            else
            {
                ids.AddRange(Encoding.UTF8.GetBytes(symbol).Select(b => 3 + b));
            }
        }

        return ids;
    }
}
