using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Data;

/// <summary>An IDX images/labels pair (MNIST, Fashion-MNIST), held in memory; grayscale is replicated to RGB on load.</summary>
internal sealed class IdxDataset : IImageDataset
{
    readonly IdxFile _images;
    readonly IdxFile _labels;
    readonly int _height, _width;

    public IdxDataset(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames)
    {
        _images = IdxFile.Read(imagesPath, rank: 3);
        _labels = IdxFile.Read(labelsPath, rank: 1);
        int count = _images.Shape[0];
        (_height, _width) = (_images.Shape[1], _images.Shape[2]);
        var limits = ImageDecoderLimits.Default;   // the same caps as a decoded image file
        if (_width > limits.MaxWidth || _height > limits.MaxHeight || (long)_width * _height > limits.MaxPixels)
            throw _images.Error(8, $"images of {_width}x{_height} exceed the image limits ({limits.MaxWidth}x{limits.MaxHeight}, {limits.MaxPixels} pixels).");
        if (_labels.Shape[0] != count)
            throw _labels.Error(4, $"{_labels.Shape[0]} labels, but {imagesPath} holds {count} images (its byte 4).");
        if (count == 0) throw new ArgumentException($"{imagesPath} holds no images.", nameof(imagesPath));

        var labels = _labels.Bytes.AsSpan(_labels.DataOffset);
        int maxLabel = 0;
        foreach (var label in labels) maxLabel = Math.Max(maxLabel, label);
        string namesFrom = "given";
        if (classNames is null)
        {
            string beside = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(imagesPath))!, ClassNamesFile.FileName);
            if (File.Exists(beside)) (classNames, namesFrom) = (ClassNamesFile.Read(beside), $"in {beside}");
            // MNIST-style sets are the digits 0-9: a label beyond is an error (a corrupt byte would otherwise widen the head
            // silently); a classes.txt beside the images names more classes
            else (classNames, namesFrom) = ([.. Enumerable.Range(0, 10).Select(i => i.ToString())], $"0-9 of an IDX set without a {ClassNamesFile.FileName} (put one beside the images to name more classes)");
        }
        if (maxLabel >= classNames.Count)
        {
            int image = labels.IndexOf((byte)maxLabel);
            throw _labels.Error(_labels.DataOffset + image,
                $"label {maxLabel} of image {image} is beyond the {classNames.Count} class names {namesFrom}.");
        }
        ClassNames = Array.AsReadOnly(classNames.ToArray());
    }

    public int Count => _images.Shape[0];
    public IReadOnlyList<string> ClassNames { get; }

    public int LabelOf(int index) => _labels.Bytes[_labels.DataOffset + Check(index)];
    public string SourceOf(int index) => $"{_images.Path}#{Check(index)}";

    // Every byte was validated at open, so loading cannot fail on bad data.
    public RgbImage Load(int index)
    {
        int plane = _height * _width;
        var gray = _images.Bytes.AsSpan(_images.DataOffset + Check(index) * plane, plane);
        var rgb = new byte[plane * 3];
        for (int i = 0; i < plane; i++)
            rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
        return new RgbImage(_width, _height, rgb);
    }

    public override string ToString() => $"IDX {_images.Path} ({Count} images of {_width}x{_height}, {ClassNames.Count} classes)";

    int Check(int index)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{_images.Path} holds {Count} images.");
        return index;
    }
}
