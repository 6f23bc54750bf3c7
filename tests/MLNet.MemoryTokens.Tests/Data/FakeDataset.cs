using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Tests.Data;

/// <summary>A dataset of given labels whose images are 1×1 pixels carrying their own index, for slicing tests.</summary>
public sealed class FakeDataset(int[] labels, int classes) : IImageDataset
{
    /// <summary>Classes of the given sizes, interleaved (0, 1, 2, 0, 1, …) so a class is not one contiguous run.</summary>
    public static FakeDataset WithClassSizes(params int[] sizes)
    {
        var labels = new List<int>();
        var left = (int[])sizes.Clone();
        while (left.Any(n => n > 0))
            for (int c = 0; c < left.Length; c++)
                if (left[c]-- > 0) labels.Add(c);
        return new FakeDataset([.. labels], sizes.Length);
    }

    public int Count => labels.Length;
    public IReadOnlyList<string> ClassNames { get; } = [.. Enumerable.Range(0, classes).Select(c => $"class{c}")];
    public int LabelOf(int index) => labels[index];
    public string SourceOf(int index) => $"fake#{index}";
    public RgbImage Load(int index) => new(1, 1, [(byte)index, (byte)(index >> 8), 0]);
}
