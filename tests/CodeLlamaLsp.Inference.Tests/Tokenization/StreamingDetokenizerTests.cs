// Checks that streaming ids one at a time gives exactly the decoded text, never half a character.
using System.Text;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Tests.Tokenization;

public class StreamingDetokenizerTests
{
    private static LlamaTokenizer Tokenizer => TokenizerFixtures.Tokenizer;

    private static IEnumerable<TestCaseData> StartCases() => TokenizerFixtures.GoldenCaseData(nameof(Streaming_from_the_start_reproduces_the_decoded_text));

    private static IEnumerable<TestCaseData> ContinuationCases() => TokenizerFixtures.GoldenCaseData(nameof(Streaming_a_continuation_keeps_the_leading_space));

    [TestCaseSource(nameof(StartCases))]
    public void Streaming_from_the_start_reproduces_the_decoded_text(GoldenCase golden)
    {
        var detokenizer = new StreamingDetokenizer(Tokenizer, isStartOfText: true);
        var text = new StringBuilder();
        foreach (var id in golden.Ids)
        {
            var chunk = detokenizer.Push(id);
            Assert.That(IsWellFormed(chunk), Is.True, () => $"chunk after id {id} splits a character");
            text.Append(chunk);
            Assert.That(golden.Decoded, Does.StartWith(text.ToString()));
        }

        text.Append(detokenizer.Finish());
        Assert.That(text.ToString(), Is.EqualTo(golden.Decoded));
    }

    [TestCaseSource(nameof(ContinuationCases))]
    public void Streaming_a_continuation_keeps_the_leading_space(GoldenCase golden)
    {
        // Generated text follows a prompt, so the first piece's "▁" is a real space, not a dummy prefix.
        var detokenizer = new StreamingDetokenizer(Tokenizer);
        var text = string.Concat(golden.Ids.Select(detokenizer.Push)) + detokenizer.Finish();

        Assert.That(text, Is.EqualTo(golden.Text.Length == 0 ? string.Empty : " " + golden.Text));
    }

    [TestCase("🦙")]
    [TestCase("😶\u200d🌫️")]
    [TestCase("工作～𠀀鿿")]
    public void A_character_split_across_byte_pieces_is_held_back_until_complete(string text)
    {
        var ids = Tokenizer.Encode(text, addDummyPrefix: false);
        Assume.That(ids.Any(id => Tokenizer.GetPieceType(id) == SentencePieceType.Byte), "the text must need byte fallback");

        var detokenizer = new StreamingDetokenizer(Tokenizer);
        var sawHeldBack = false;
        var output = new StringBuilder();
        foreach (var id in ids)
        {
            var chunk = detokenizer.Push(id);
            sawHeldBack |= detokenizer.HeldBackByteCount > 0;
            Assert.That(IsWellFormed(chunk), Is.True);
            output.Append(chunk);
        }

        Assert.That(sawHeldBack, Is.True);
        Assert.That(detokenizer.HeldBackByteCount, Is.Zero);
        Assert.That(output.ToString(), Is.EqualTo(text));
    }

    [Test]
    public void Special_ids_produce_no_text()
    {
        var detokenizer = new StreamingDetokenizer(Tokenizer);

        Assert.That(detokenizer.Push(Tokenizer.BosId), Is.Empty);
        Assert.That(detokenizer.Push(Tokenizer.Encode("def")[0]), Is.EqualTo(" def"));
        Assert.That(detokenizer.Push(Tokenizer.EosId), Is.Empty);
    }

    [Test]
    public void An_unfinished_character_comes_out_as_replacement_characters_at_the_end()
    {
        var detokenizer = new StreamingDetokenizer(Tokenizer);

        Assert.That(detokenizer.Push(3 + 0xF0) + detokenizer.Push(3 + 0x9F), Is.Empty);
        Assert.That(detokenizer.HeldBackByteCount, Is.EqualTo(2));
        Assert.That(detokenizer.Finish(), Is.EqualTo("\uFFFD\uFFFD"));
    }

    [Test]
    public void Streaming_and_decoding_random_ids_match_a_batch_reference_decoder()
    {
        // Byte pieces (ids 3..258) are over-represented so that valid, truncated and invalid UTF-8 all occur.
        var random = new Random(42);
        var utf8Starts = new[] { 0x41, 0xC3, 0xA9, 0xE4, 0xB8, 0xAD, 0xF0, 0x9F, 0xA6, 0x99, 0x80, 0xFF, 0xED, 0xA0 };
        for (var trial = 0; trial < 500; trial++)
        {
            var ids = Enumerable.Range(0, random.Next(1, 30)).Select(_ => random.Next(4) switch
            {
                0 => random.Next(Tokenizer.VocabSize),
                1 => random.Next(3),
                _ => 3 + utf8Starts[random.Next(utf8Starts.Length)],
            }).ToArray();

            var detokenizer = new StreamingDetokenizer(Tokenizer, isStartOfText: true);
            var streamed = string.Concat(ids.Select(detokenizer.Push)) + detokenizer.Finish();
            var expected = ReferenceDecode(ids);

            Assert.That(streamed, Is.EqualTo(expected), () => "ids " + string.Join(",", ids));
            Assert.That(Tokenizer.Decode(ids), Is.EqualTo(expected), () => "ids " + string.Join(",", ids));
        }
    }

    private static bool IsWellFormed(string chunk)
    {
        for (var i = 0; i < chunk.Length; i++)
        {
            if (char.IsHighSurrogate(chunk[i]))
            {
                if (i + 1 == chunk.Length || !char.IsLowSurrogate(chunk[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(chunk[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// sentencepiece's batch decoder, written independently of the streaming one: byte runs are decoded
    /// whole when a non-byte piece (or the end) closes them; malformed bytes become one U+FFFD each.
    /// </summary>
    private static string ReferenceDecode(IReadOnlyList<int> ids)
    {
        var text = new StringBuilder();
        var run = new List<byte>();
        var strippedSpace = false;
        var mayStrip = true;
        foreach (var id in ids.Append(-1))
        {
            if (id >= 0 && Tokenizer.GetPieceType(id) == SentencePieceType.Byte)
            {
                run.Add(Convert.ToByte(Tokenizer.IdToPiece(id)[3..5], 16));
                continue;
            }

            for (var i = 0; i < run.Count;)
            {
                var n = run[i] < 0x80 ? 1 : run[i] >= 0xF0 && run[i] < 0xF8 ? 4 : run[i] >= 0xE0 && run[i] < 0xF0 ? 3 : run[i] >= 0xC0 && run[i] < 0xE0 ? 2 : 0;
                var ok = n > 0 && i + n <= run.Count && run.Skip(i + 1).Take(n - 1).All(b => b is >= 0x80 and < 0xC0);
                var cp = 0;
                if (ok)
                {
                    cp = n == 1 ? run[i] : run[i] & (0x7F >> n);
                    for (var k = 1; k < n; k++)
                    {
                        cp = (cp << 6) | (run[i + k] & 0x3F);
                    }

                    ok = cp >= (n switch { 1 => 0, 2 => 0x80, 3 => 0x800, _ => 0x10000 }) && (cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF));
                }

                text.Append(ok ? char.ConvertFromUtf32(cp) : "\uFFFD");
                i += ok ? n : 1;
            }

            run.Clear();
            if (id < 0)
            {
                break;
            }

            if (strippedSpace || text.Length > 0)
            {
                mayStrip = false;
            }

            var piece = Tokenizer.IdToPiece(id);
            strippedSpace = false;
            switch (Tokenizer.GetPieceType(id))
            {
                case SentencePieceType.Control:
                    break;
                case SentencePieceType.Unknown:
                    text.Append(" \u2047 ");
                    break;
                default:
                    strippedSpace = mayStrip && piece.StartsWith('\u2581');
                    text.Append((strippedSpace ? piece[1..] : piece).Replace('\u2581', ' '));
                    break;
            }
        }

        return text.ToString();
    }
}
