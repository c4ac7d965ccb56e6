// The small-batch kernel's copy cursor on the host: the cp.async source addresses and the warps' slices only run on
// the GPU, so their arithmetic is checked here, unit by unit, against the layout written out directly, for a launch of
// three parts and block ranges cut as the stream-K split cuts them.
using CodeLlamaLsp.Inference.Engine.Cuda;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

public class SmallBatchCursorTests
{
    /// <summary>
    /// Every unit a warp copies, in every part of a three-part launch (96, 32 and 160 columns: partial column blocks, at
    /// g128 and g64): the weights' and activations' addresses are the owning part's, at its own column block, and the
    /// weight stride between units is its out-features.
    /// </summary>
    [TestCase(256, 128)]
    [TestCase(512, 64)]
    public void Cursor_addresses_are_the_owning_parts(int inF, int group)
    {
        int[] outs = [96, 32, 160];
        long[] qweight = [1L << 40, 2L << 40, 3L << 40];
        long[] input = [5L << 40, 6L << 40, 7L << 40];
        int[] firstBlocks = [0, GptqSmallBatchKernels.ColumnBlocks(outs[0]), GptqSmallBatchKernels.ColumnBlocks(outs[0]) + GptqSmallBatchKernels.ColumnBlocks(outs[1])];
        int columnBlocks = firstBlocks[2] + GptqSmallBatchKernels.ColumnBlocks(outs[2]);
        GptqGemvArgs Layer(int p) => new() { InFeatures = inF, OutFeatures = outs[p], GroupSize = group, Bits = 4, Rows = 1, QWeightAddress = qweight[p], InputAddress = input[p] };
        var a = new SmallBatchArgs
        {
            Layer = Layer(0),
            Layer1 = Layer(1),
            Layer2 = Layer(2),
            FirstBlock1 = firstBlocks[1],
            FirstBlock2 = firstBlocks[2],
            ColumnBlocks = columnBlocks,
            KUnits = inF / GptqSmallBatchKernels.UnitInputs,
            GroupUnits = group / GptqSmallBatchKernels.UnitInputs,
        };
        int units = columnBlocks * a.KUnits;
        uint magic = CopyCursor.GroupMagic(a);
        int seen = 0;

        // Block ranges as the stream-K split cuts them: some within one column block, some across several, and at 13
        // blocks some shorter than four units (warps with empty slices).
        var visits = new int[units];
        foreach (int blocks in new[] { 1, 13, (units / 3) + 1 })
        {
            Array.Clear(visits);
            for (int b = 0; b < blocks; b++)
            {
                for (int warp = 0; warp < GptqSmallBatchKernels.WarpsPerBlock; warp++)
                {
                    var r = new WarpRange { First = b * units / blocks, End = (b + 1) * units / blocks, Warp = warp };
                    var c = CopyCursor.First(r, a, 0, magic);
                    int last = -1;
                    while (c.Unit < r.End)
                    {
                        Assert.That(c.Unit, Is.GreaterThan(last), "units in increasing order");
                        Assert.That(c.Unit, Is.GreaterThanOrEqualTo(r.First));
                        int segment = Math.Max(r.First, c.Unit / a.KUnits * a.KUnits);
                        int segmentEnd = Math.Min(r.End, segment - (segment % a.KUnits) + a.KUnits);
                        int n = segmentEnd - segment;
                        Assert.That(c.Unit, Is.InRange(segment + (n * warp / 4), segment + (n * (warp + 1) / 4) - 1), $"unit {c.Unit} in warp {warp}'s slice of [{segment}, {segmentEnd})");
                        visits[c.Unit]++;
                        last = c.Unit;
                        c = c.Next(a, r, 0, magic);
                    }
                }
            }

            Assert.That(visits, Is.All.EqualTo(1), $"{blocks} blocks: every unit once, by the warp whose slice holds it");
        }

        for (int lane = 0; lane < 32; lane++)
        {
            for (int warp = 0; warp < GptqSmallBatchKernels.WarpsPerBlock; warp++)
            {
                var r = new WarpRange { First = 0, End = units, Warp = warp };
                var c = CopyCursor.First(r, a, lane, magic);
                while (c.Unit < units)
                {
                    int block = c.Unit / a.KUnits;
                    int step = c.Unit % a.KUnits;
                    int part = block >= firstBlocks[2] ? 2 : block >= firstBlocks[1] ? 1 : 0;
                    int column = ((block - firstBlocks[part]) * GptqSmallBatchKernels.BlockColumns) + ((lane & 15) * 4);
                    long weights = qweight[part] + ((((((4L * step) + (lane >> 4)) * outs[part]) + column)) * 4);
                    long activations = input[part] + ((((lane >> 2) * (long)inF) + (32 * step) + (8 * (lane & 3))) * 2);
                    string where = $"unit {c.Unit} (part {part}, step {step}), lane {lane}";
                    Assert.That(c.Block, Is.EqualTo(block), where);
                    Assert.That(c.OutFeatures, Is.EqualTo(outs[part]), where);
                    Assert.That(c.Weights, Is.EqualTo(weights), where);
                    Assert.That(c.Activations, Is.EqualTo(activations), where);
                    Assert.That(c.WeightValid != 0, Is.EqualTo(column < outs[part]), where);
                    Assert.That(c.Group, Is.EqualTo(step * GptqSmallBatchKernels.UnitInputs / group), where);
                    seen++;
                    c = c.Next(a, r, lane, magic);
                }
            }
        }

        Assert.That(seen, Is.EqualTo(32 * units), "every unit once per lane");
    }
}
