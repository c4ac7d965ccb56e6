// Speculative decoding's acceptance rule, written once for every IDecodingSession.AdvanceWithDraft: the
// token-by-token default, InferenceSession's one-pass verification on the CPU and CudaDecodingSession's on the
// GPU differ only in how the model's id after each verified row is obtained.
namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Keeps the longest prefix of a draft that the model agrees with, plus the model's own next id.</summary>
internal static class DraftAcceptance
{
    /// <summary>
    /// Row i is the appended token (i = 0) or draft[i - 1]; <paramref name="chooseAfterRow"/>(i) is the id the model
    /// chooses after it, asked in row order and only while the draft holds: draft[i] is kept while it equals that id.
    /// Returns the kept draft tokens followed by the model's own id (1 to draft.Length + 1 ids). With sampling, a
    /// choice is a draw from the model's distribution at that position, which is speculative sampling's acceptance for
    /// a deterministic draft (see <see cref="IDecodingSession.AdvanceWithDraft"/>).
    /// </summary>
    public static List<int> KeepAgreeingPrefix(ReadOnlySpan<int> draft, Func<int, int> chooseAfterRow)
    {
        ArgumentNullException.ThrowIfNull(chooseAfterRow);
        var chosen = new List<int>(draft.Length + 1);
        for (int row = 0; ; row++)
        {
            int id = chooseAfterRow(row);
            chosen.Add(id);
            if (row == draft.Length || id != draft[row])
            {
                return chosen;
            }
        }
    }
}
