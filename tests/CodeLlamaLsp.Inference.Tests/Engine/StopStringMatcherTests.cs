// Stop-string matching over streamed pieces (tokens in-process, events from a remote engine), where a stop string may span several pieces.
using CodeLlamaLsp.Inference.Sampling;

namespace CodeLlamaLsp.Inference.Tests.Engine;

public class StopStringMatcherTests
{
    [TestCase(new[] { "ab", "c</s", "top>d" }, new[] { "</stop>" }, "abc", true)]
    [TestCase(new[] { "x<", "y" }, new[] { "<z>" }, "x<y", false)]
    [TestCase(new[] { "one\ntwo", "\nthree" }, new[] { "two\nth", "\n" }, "one", true)]
    [TestCase(new[] { "hello" }, new string[0], "hello", false)]
    [TestCase(new[] { "ab", "" , "c" }, new[] { "abc" }, "", true)]
    public void Text_before_the_earliest_stop_string_is_all_that_is_shown(string[] pieces, string[] stops, string expected, bool stopped)
    {
        var matcher = new StopStringMatcher(stops);

        string shown = string.Concat(pieces.Select(matcher.Push)) + matcher.Flush();

        Assert.That(shown, Is.EqualTo(expected));
        Assert.That(matcher.Stopped, Is.EqualTo(stopped));
    }

    [Test]
    public void A_possible_stop_prefix_is_held_back_until_the_next_piece_decides()
    {
        var matcher = new StopStringMatcher(["\n\n"]);

        Assert.That(matcher.Push("x = 1\n"), Is.EqualTo("x = 1"));
        Assert.That(matcher.Push("y = 2"), Is.EqualTo("\ny = 2"));
        Assert.That(matcher.Stopped, Is.False);
    }
}
