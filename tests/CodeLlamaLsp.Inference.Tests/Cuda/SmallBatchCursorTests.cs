// The small-batch kernel's copy cursor on the host: the cp.async source addresses only run on the GPU, so their
// arithmetic is checked here, unit by unit, against the layout written out directly, for a launch of three parts.
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
        for (int lane = 0; lane < 32; lane++)
        {
            for (int warp = 0; warp < GptqSmallBatchKernels.WarpsPerBlock; warp++)
            {
                var c = CopyCursor.At(warp * GptqSmallBatchKernels.ChunkSize, a, lane, magic);
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
                    c = c.Next(a, lane, magic);
                }
            }
        }

        Assert.That(seen, Is.EqualTo(32 * units), "every unit once per lane");
    }
}
