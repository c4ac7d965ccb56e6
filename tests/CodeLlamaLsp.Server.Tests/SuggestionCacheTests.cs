// Typing through a suggestion reuses it: the cache answers with the rest of the suggestion only when the
// text before the cursor grew by exactly the suggestion's first characters and nothing else changed.
using CodeLlamaLsp.Server.Scheduling;

namespace CodeLlamaLsp.Server.Tests;

public class SuggestionCacheTests
{
    private const string Uri = "file:///a.py";

    private static SuggestionCache CacheWith(string text, int offset, string suggestion)
    {
        var cache = new SuggestionCache();
        cache.Store(Uri, text, offset, suggestion);
        return cache;
    }

    [Test]
    public void Typing_the_first_characters_of_the_suggestion_reuses_the_rest()
    {
        var cache = CacheWith("def f(:\n    pass", 6, "x, y):");
        Assert.That(cache.TryReuse(Uri, "def f(x, :\n    pass", 9), Is.EqualTo("y):"));
    }

    [Test]
    public void Asking_again_at_the_same_place_reuses_the_whole_suggestion()
    {
        var cache = CacheWith("ab", 2, "cd");
        Assert.That(cache.TryReuse(Uri, "ab", 2), Is.EqualTo("cd"));
    }

    [TestCase("abX", 3, TestName = "Typing something else")]
    [TestCase("abcd", 4, TestName = "Typing the whole suggestion")]
    [TestCase("Zabc", 4, TestName = "An edit before the cursor")]
    [TestCase("a", 1, TestName = "Deleting back past the original cursor")]
    public void Other_edits_miss_the_cache(string text, int offset)
    {
        var cache = CacheWith("ab", 2, "cd");
        Assert.That(cache.TryReuse(Uri, text, offset), Is.Null);
    }

    [Test]
    public void A_changed_suffix_misses_the_cache()
    {
        var cache = CacheWith("ab\nrest", 2, "cd");
        Assert.That(cache.TryReuse(Uri, "abc\nREST", 3), Is.Null);
    }

    [Test]
    public void Forgotten_documents_miss_the_cache()
    {
        var cache = CacheWith("ab", 2, "cd");
        cache.Forget(Uri);
        Assert.That(cache.TryReuse(Uri, "ab", 2), Is.Null);
    }
}
