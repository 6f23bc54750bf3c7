using MLNet.MemoryTokens.Model;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary>A block told which rows are live (the last block: only the pooled row feeds the head) gives those rows the values
/// of a full run, and the same gradients as a full run whose output gradient is zero elsewhere (up to float rounding: a few
/// live queries take attention's dot-product path instead of the GEMM).</summary>
public class VitBlockTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(3, 2)]
    public void LiveRowsMatchTheFullBlock(int start, int count)
    {
        var vit = VitParityTests.LoadRandom();
        var c = vit.Config;
        var block = vit.Blocks[c.Depth - 1];
        int batch = 3, s = c.NumTokens, d = c.Dim;
        var memory = Numerics.Random(2 * d, 5, 0.5f);
        IReadOnlyList<ReadOnlyMemory<float>> memories = [memory];
        var x0 = Numerics.Random(batch * s * d, 6);
        var full = (float[])x0.Clone();
        var fullTape = new BlockTape { Scratch = new BackwardScratch() };
        block.Forward(full, batch, s, memories, [new AttentionGroup(0, s, [(0, s)], [0])], fullTape, weightGradients: true);
        var live = (float[])x0.Clone();
        var liveTape = new BlockTape { Scratch = new BackwardScratch() };
        var liveGroups = new[] { new AttentionGroup(start, count, [(0, s)], [0]) };
        block.Forward(live, batch, s, memories, liveGroups, liveTape, weightGradients: true, live: new LiveRows((start, count)));
        for (int b = 0; b < batch; b++)
            Numerics.AssertClose(full.AsSpan((b * s + start) * d, count * d).ToArray(), live.AsSpan((b * s + start) * d, count * d).ToArray(), 1e-6, 1e-5, $"live rows of sample {b}");

        // backward from a gradient on the live rows only: same input gradient, memory gradient and weight gradients
        var dOut = new float[batch * s * d];
        var g = Numerics.Random(batch * count * d, 7);
        for (int b = 0; b < batch; b++) g.AsSpan(b * count * d, count * d).CopyTo(dOut.AsSpan((b * s + start) * d));
        var (dxFull, dxLive) = ((float[])dOut.Clone(), (float[])dOut.Clone());
        var (dmFull, dmLive) = (new float[2 * d], new float[2 * d]);
        var (wFull, wLive) = (new BlockGrads(c), new BlockGrads(c));
        block.Backward(dxFull, batch, s, memories, [new AttentionGroup(0, s, [(0, s)], [0])], fullTape, [dmFull], wFull);
        block.Backward(dxLive, batch, s, memories, liveGroups, liveTape, [dmLive], wLive);
        Numerics.AssertClose(dxFull, dxLive, 1e-6, 1e-5, "dx");
        Numerics.AssertClose(dmFull, dmLive, 1e-6, 1e-5, "dmemory");
        foreach (var ((name, a), (_, b)) in wFull.Named().Zip(wLive.Named()))
            Numerics.AssertClose(a, b, 1e-5, 1e-4, name);   // sums over every row: rounding adds up
    }

    [Fact]
    public void LiveRowsMustHoldEveryQuery()
    {
        var vit = VitParityTests.LoadRandom();
        int s = vit.Config.NumTokens;
        var x = new float[s * vit.Config.Dim];
        var tape = new BlockTape { Scratch = new BackwardScratch() };
        Assert.Throws<ArgumentException>(() => vit.Blocks[0].Forward(x, 1, s, [], [new AttentionGroup(0, s, [(0, s)], [])], tape, live: new LiveRows((0, 1))));
        Assert.Throws<ArgumentException>(() => vit.Blocks[0].Forward(x, 1, s, [], [new AttentionGroup(2, 1, [(0, s)], [])], tape, live: new LiveRows((2, 1), (1, 1))));   // not ascending
    }

    [Fact]
    public void PanelsRepackInPlaceAfterTheWeightsChangeAndEqualFreshOnes()
    {
        // full fine-tuning changes every weight each step: the packed panels must follow (in their own buffers, no new arrays)
        var vit = VisionTransformer.CreateRandom(new VitConfig { ImageSize = 32, PatchSize = 8, Dim = 64, Depth = 2, Heads = 4, MlpDim = 128, NumClasses = 5 }, seed: 1);
        var x = new Tensor([2, 3, 32, 32], Numerics.Random(2 * 3 * 32 * 32, 2));
        var before = vit.Forward(x).Clone();
        var panels = (vit.Blocks[0].QkvPacked.Data, vit.Blocks[1].Fc2Packed.Data, vit.PatchPacked.Data, vit.HeadPacked!.Data);
        int seed = 3;
        foreach (var t in vit.Parameters.Values)
        {
            var noise = Numerics.Random(t.Length, ++seed, 0.05f);
            for (int i = 0; i < t.Length; i++) t.Data[i] += noise[i];
        }
        vit.InvalidatePackedWeights();
        var after = vit.Forward(x).Clone();
        var fresh = new VisionTransformer(vit.Config, vit.Parameters).Forward(x);
        Assert.Equal(fresh.Data, after.Data);
        Assert.NotEqual(before.Data, after.Data);
        Assert.Same(panels.Item1, vit.Blocks[0].QkvPacked.Data);
        Assert.Same(panels.Item2, vit.Blocks[1].Fc2Packed.Data);
        Assert.Same(panels.Item3, vit.PatchPacked.Data);
        Assert.Same(panels.Item4, vit.HeadPacked!.Data);
    }
}
