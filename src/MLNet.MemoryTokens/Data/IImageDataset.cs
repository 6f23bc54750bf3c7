using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Data;

/// <summary>A labelled image collection, read lazily. Implementations are immutable, so <see cref="Load"/> may run in parallel.</summary>
public interface IImageDataset
{
    /// <summary>Number of images.</summary>
    int Count { get; }

    /// <summary>Class names; a label is an index into this list.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>The label of image <paramref name="index"/>, in <c>0..ClassNames.Count-1</c>.</summary>
    int LabelOf(int index);

    /// <summary>Where image <paramref name="index"/> comes from, for messages: a file path, or <c>"file.idx#123"</c>.</summary>
    string SourceOf(int index);

    /// <summary>Decodes image <paramref name="index"/>; throws <see cref="ImageDecodeException"/> naming <see cref="SourceOf"/> on bad data.</summary>
    RgbImage Load(int index);
}
