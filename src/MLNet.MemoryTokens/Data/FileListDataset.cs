using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Data;

/// <summary>Images stored one per file, with labels decided up front (by <see cref="ImageFolder"/> or <see cref="CsvImageList"/>).</summary>
internal sealed class FileListDataset : IImageDataset
{
    readonly string[] _paths;
    readonly int[] _labels;
    readonly string _description;

    public FileListDataset(string description, string[] paths, int[] labels, string[] classNames)
    {
        if (paths.Length != labels.Length) throw new ArgumentException("One label per path is required.", nameof(labels));
        _description = description;
        _paths = paths;
        _labels = labels;
        ClassNames = Array.AsReadOnly(classNames);
    }

    public int Count => _paths.Length;
    public IReadOnlyList<string> ClassNames { get; }

    public int LabelOf(int index) => _labels[Check(index)];
    public string SourceOf(int index) => _paths[Check(index)];

    // ImageDecoder reports unreadable or malformed files as ImageDecodeException naming the path, as the interface promises.
    public RgbImage Load(int index) => ImageDecoder.Load(_paths[Check(index)]);

    public override string ToString() => $"{_description} ({Count} images, {ClassNames.Count} classes)";

    int Check(int index)
    {
        if ((uint)index >= (uint)_paths.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{_description} has {_paths.Length} images.");
        return index;
    }
}
