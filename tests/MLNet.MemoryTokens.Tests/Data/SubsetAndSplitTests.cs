using MLNet.MemoryTokens.Data;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

public class SubsetAndSplitTests
{
    static int[] SourceIndices(IImageDataset d) =>
        [.. Enumerable.Range(0, d.Count).Select(i => int.Parse(d.SourceOf(i)["fake#".Length..]))];

    [Fact]
    public void TakeIsThePrefixAndClampsToCount()
    {
        var d = FakeDataset.WithClassSizes(3, 3);
        var first = d.Take(4);
        Assert.Equal([0, 1, 2, 3], SourceIndices(first));
        Assert.Equal(d.Labels()[..4], first.Labels());
        Assert.Equal(6, d.Take(100).Count);
        Assert.Equal(0, d.Take(0).Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Take(-1));
    }

    [Fact]
    public void SubsetMapsIndicesAndNestsFlat()
    {
        var d = FakeDataset.WithClassSizes(2, 2); // labels 0 1 0 1
        var s = d.Subset([3, 0, 3]);
        Assert.Equal([3, 0, 3], SourceIndices(s));
        Assert.Equal([1, 0, 1], s.Labels());
        Assert.Equal(d.ClassNames, s.ClassNames);
        Assert.Equal(3, s.Load(0).Pixels[0]);

        var nested = s.Subset([1, 2]);
        Assert.Equal([0, 3], SourceIndices(nested));
        Assert.Equal($"2 of {d}", nested.ToString()); // points at the original, not a chain of views

        Assert.Throws<ArgumentOutOfRangeException>(() => d.Subset([0, 4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Load(3));
    }

    [Fact]
    public void StratifiedSplitIsDeterministicDisjointCompleteAndProportional()
    {
        int[] sizes = [100, 37, 38, 5, 1, 0, 3];
        var d = FakeDataset.WithClassSizes(sizes);
        const double fraction = 0.2;

        var (train, validation) = d.SplitStratified(fraction, seed: 7);
        var (train2, validation2) = d.SplitStratified(fraction, seed: 7);
        Assert.Equal(SourceIndices(train), SourceIndices(train2));
        Assert.Equal(SourceIndices(validation), SourceIndices(validation2));
        Assert.NotEqual(SourceIndices(validation), SourceIndices(d.SplitStratified(fraction, seed: 8).Validation));

        var t = SourceIndices(train);
        var v = SourceIndices(validation);
        Assert.Empty(t.Intersect(v));
        Assert.Equal(Enumerable.Range(0, d.Count), t.Concat(v).Order());
        Assert.Equal(t.Order(), t); // both parts keep the dataset's order
        Assert.Equal(v.Order(), v);

        var perClass = validation.ClassCounts();
        for (int c = 0; c < sizes.Length; c++)
        {
            Assert.InRange(perClass[c], sizes[c] * fraction - 1, sizes[c] * fraction + 1);
            Assert.Equal((int)Math.Round(sizes[c] * fraction, MidpointRounding.AwayFromZero), perClass[c]); // as documented
            Assert.Equal(sizes[c], perClass[c] + train.ClassCounts()[c]);
        }
    }

    [Fact]
    public void SameSeedGivesTheSameSplitEverywhere()
    {
        // Pinned output: the shuffle is SplitMix64 + Fisher–Yates, not System.Random, so this must never change.
        // The same indices come out of a twenty-line Python transcription of StratifiedSplit.
        var validation = FakeDataset.WithClassSizes(10, 10).SplitStratified(0.3, seed: 2024).Validation;
        Assert.Equal(PinnedValidation, SourceIndices(validation));
    }

    static readonly int[] PinnedValidation = [2, 3, 6, 10, 15, 17];

    [Fact]
    public void FractionEdgesAndBadFractions()
    {
        var d = FakeDataset.WithClassSizes(4, 3);
        Assert.Equal(0, d.SplitStratified(0, 1).Validation.Count);
        Assert.Equal(7, d.SplitStratified(1, 1).Validation.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.SplitStratified(1.5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.SplitStratified(double.NaN, 1));
    }
}
