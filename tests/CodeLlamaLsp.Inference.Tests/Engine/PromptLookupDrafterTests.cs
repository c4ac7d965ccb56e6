// Prompt lookup drafts: the tokens after the latest earlier occurrence of the last 3, 2 or 1 tokens, a
// repeating pattern continued past the end of the text, nothing without a match, the draft length
// adapting to how much of each draft was accepted, and drafting pausing longer after each failed one-token draft.
using CodeLlamaLsp.Inference.Engine;

namespace CodeLlamaLsp.Inference.Tests.Engine;

public class PromptLookupDrafterTests
{
    [Test]
    public void The_tokens_after_the_latest_earlier_occurrence_of_the_last_three_are_proposed()
    {
        // "5 6 7" occurs at 1 (followed by 8 9) and at 6 (followed by 20 21); the latest wins.
        var drafter = new PromptLookupDrafter([4, 5, 6, 7, 8, 9, 5, 6, 7, 20, 21, 30, 31, 5, 6, 7]);

        Assert.That(drafter.Draft(limit: 4), Is.EqualTo(new[] { 20, 21, 30, 31 }));
    }

    [Test]
    public void Without_a_three_token_match_shorter_suffixes_are_looked_up()
    {
        var bigram = new PromptLookupDrafter([1, 6, 7, 2, 3, 9, 6, 7]);
        var unigram = new PromptLookupDrafter([1, 7, 2, 3, 9, 8, 7]);

        Assert.Multiple(() =>
        {
            Assert.That(bigram.Draft(limit: 3), Is.EqualTo(new[] { 2, 3, 9 }));
            Assert.That(unigram.Draft(limit: 3), Is.EqualTo(new[] { 2, 3, 9 }));
        });
    }

    [Test]
    public void Answer_tokens_count_as_text_to_match()
    {
        var drafter = new PromptLookupDrafter([1, 2, 3, 4, 5]);
        drafter.Append(2);
        drafter.Append(3);

        Assert.That(drafter.Draft(limit: 2), Is.EqualTo(new[] { 4, 5 }));
    }

    [Test]
    public void No_earlier_occurrence_proposes_nothing()
    {
        Assert.Multiple(() =>
        {
            Assert.That(new PromptLookupDrafter([1, 2, 3, 4]).Draft(limit: 8), Is.Empty);
            Assert.That(new PromptLookupDrafter([5]).Draft(limit: 8), Is.Empty);
            Assert.That(new PromptLookupDrafter([5, 6, 5]).Draft(limit: 0), Is.Empty);
        });
    }

    [Test]
    public void A_repeating_pattern_is_continued_past_the_end_of_the_text()
    {
        var drafter = new PromptLookupDrafter([9, 1, 2, 3, 1, 2, 3]);

        Assert.That(drafter.Draft(limit: 7), Is.EqualTo(new[] { 1, 2, 3, 1, 2, 3, 1 }));
    }

    [Test]
    public void The_draft_is_no_longer_than_the_adaptive_length_or_the_limit()
    {
        var drafter = new PromptLookupDrafter(Enumerable.Repeat(7, 40));

        Assert.Multiple(() =>
        {
            Assert.That(drafter.Draft(limit: 100), Has.Length.EqualTo(PromptLookupDrafter.InitialDraftLength));
            Assert.That(drafter.Draft(limit: 3), Has.Length.EqualTo(3));
        });
    }

    [Test]
    public void The_draft_length_doubles_after_full_acceptance_and_halves_after_a_rejection()
    {
        var drafter = new PromptLookupDrafter([1]);
        var lengths = new List<int>();
        foreach (var (drafted, accepted) in new[] { (8, 8), (16, 16), (16, 3), (8, 0), (4, 0), (2, 0), (1, 0), (1, 1) })
        {
            drafter.Record(drafted, accepted);
            lengths.Add(drafter.DraftLength);
        }

        Assert.Multiple(() =>
        {
            Assert.That(lengths, Is.EqualTo(new[] { 16, 16, 8, 4, 2, 1, 1, 2 }));
            Assert.That(drafter.Drafted, Is.EqualTo(56));
            Assert.That(drafter.Accepted, Is.EqualTo(28));
        });
    }

    [Test]
    public void A_rejection_late_in_a_draft_keeps_room_for_what_was_accepted()
    {
        var drafter = new PromptLookupDrafter([1]);

        drafter.Record(8, 6);

        Assert.That(drafter.DraftLength, Is.EqualTo(7));
    }

    [Test]
    public void Failed_one_token_drafts_pause_drafting_for_longer_each_time_until_one_is_accepted()
    {
        var drafter = new PromptLookupDrafter(Enumerable.Repeat(7, 10));
        foreach (var _ in Enumerable.Range(0, 3))
        {
            drafter.Record(drafter.Draft(limit: 16).Length, 0); // 8, 4, 2 drafted; down to length 1
        }

        var steps = new List<int>();
        for (int step = 0; step < 16; step++)
        {
            var draft = drafter.Draft(limit: 16);
            steps.Add(draft.Length);
            if (draft.Length > 0)
            {
                drafter.Record(draft.Length, step < 10 ? 0 : 1);
            }
        }

        // Pauses of 1, 2 and 4 steps after each failure; the draft at step 10 is accepted, which ends pausing.
        Assert.That(steps, Is.EqualTo(new[] { 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2 }));
    }
}
