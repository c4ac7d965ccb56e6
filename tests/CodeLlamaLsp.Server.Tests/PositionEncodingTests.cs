// LSP positions count UTF-16 code units per line; lines end at \n, \r\n or \r. These cases are the ones
// editors get wrong: astral characters (surrogate pairs), CRLF, lone CR, tabs and the end of the text.
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Tests;

public class PositionEncodingTests
{
    private static void Check(string text, int line, int character, int expectedOffset)
    {
        var index = new LineIndex(text);
        int offset = FromLsp.Offset(index, new Position(line, character));
        Assert.That(offset, Is.EqualTo(expectedOffset), $"offset of {line}:{character}");
        Assert.That(ToLsp.Position(index, offset), Is.EqualTo(new Position(line, character)), "round trip");
    }

    [Test]
    public void Surrogate_pairs_count_as_two_code_units()
    {
        // "a😀b": the emoji is U+1F600, two UTF-16 code units.
        Check("a\U0001F600b\nx", 0, 3, 3);
        Check("a\U0001F600b\nx", 1, 1, 6);
    }

    [Test]
    public void A_position_inside_a_surrogate_pair_is_rejected()
    {
        var index = new LineIndex("a\U0001F600b");
        Assert.That(() => FromLsp.Offset(index, new Position(0, 2)), Throws.TypeOf<InvalidPositionException>().With.Message.Contains("surrogate"));
    }

    [Test]
    public void Crlf_and_lone_cr_end_lines()
    {
        Check("ab\r\ncd\ref", 1, 1, 5);
        Check("ab\r\ncd\ref", 2, 2, 9);
        Assert.That(new LineIndex("ab\r\ncd\ref").LineLength(0), Is.EqualTo(2), "\\r\\n is not part of the line");
    }

    [Test]
    public void Tabs_are_one_code_unit()
    {
        Check("\t\tx = 1", 0, 2, 2);
    }

    [Test]
    public void The_end_of_the_text_and_the_empty_last_line_are_valid()
    {
        Check("abc\n", 1, 0, 4);
        Check("abc", 0, 3, 3);
        Check("", 0, 0, 0);
    }

    [TestCase(2, 0)]
    [TestCase(0, 4)]
    [TestCase(-1, 0)]
    [TestCase(0, -1)]
    public void Positions_outside_the_text_are_rejected_with_a_message(int line, int character)
    {
        var index = new LineIndex("abc\nd");
        Assert.That(() => FromLsp.Offset(index, new Position(line, character)), Throws.TypeOf<InvalidPositionException>().With.Message.Contains("outside"));
    }

    [Test]
    public void A_range_ending_before_its_start_is_rejected()
    {
        var index = new LineIndex("abc\ndef");
        Assert.That(() => FromLsp.Span(index, new Protocol.Range(new Position(1, 0), new Position(0, 1))), Throws.TypeOf<InvalidPositionException>());
    }

    [Test]
    public void Offsets_map_back_to_positions_on_every_line()
    {
        const string text = "x\r\n\U0001F600y\n\tz";
        var index = new LineIndex(text);
        Assert.That(ToLsp.Position(index, 3), Is.EqualTo(new Position(1, 0)));
        Assert.That(ToLsp.Position(index, 6), Is.EqualTo(new Position(1, 3)));
        Assert.That(ToLsp.Position(index, text.Length), Is.EqualTo(new Position(2, 2)));
    }
}
