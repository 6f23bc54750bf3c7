using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Data;

/// <summary>A labelled image collection, read lazily.</summary>
public interface IImageDataset
{
    int Count { get; }
    IReadOnlyList<string> ClassNames { get; }
    int LabelOf(int index);
    string SourceOf(int index);
    RgbImage Load(int index);
}
