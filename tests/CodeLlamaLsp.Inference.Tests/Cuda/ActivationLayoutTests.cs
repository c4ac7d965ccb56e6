// The device's layout index (masks and a shift) against the host's arithmetic written out with divisions, for every
// width a producer writes: the producers' stores go wherever this says, so a wrong slot feeds a linear layer the wrong
// input without any other test noticing before the logits.
using CodeLlamaLsp.Inference.Engine.Cuda;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

public class ActivationLayoutTests
{
    /// <summary>Both device entry points, by width and by the masks the split-row RMSNorm makes once, place every position where the host does.</summary>
    [TestCase(4)]
    [TestCase(8)]
    [TestCase(16)]
    public void Device_index_equals_the_host_index(int bits)
    {
        var masks = SlotMasks.Of(bits);
        var mismatches = Enumerable.Range(0, 4096)
            .Where(k => ActivationLayout.HalfIndexOfSorted(k, bits) != ActivationLayout.HalfIndexHost(k, bits, null)
                || ActivationLayout.HalfIndexOfSorted(k, masks) != ActivationLayout.HalfIndexHost(k, bits, null))
            .Take(5)
            .ToList();
        Assert.That(mismatches, Is.Empty);
    }

    [TestCase(4)]
    [TestCase(8)]
    public void Device_index_is_a_permutation_of_the_row(int bits)
    {
        var slots = Enumerable.Range(0, 1024).Select(k => ActivationLayout.HalfIndexOfSorted(k, bits)).OrderBy(i => i);
        Assert.That(slots, Is.EqualTo(Enumerable.Range(0, 1024)));
    }
}
