namespace MLNet.MemoryTokens.Imaging;

/// <summary>Caps checked against an image header before any pixel memory is allocated, so hostile headers cannot exhaust memory.</summary>
public sealed record ImageDecoderLimits
{
    /// <summary>The defaults: 16384 pixels per side, 100 million pixels in all (300 MB of RGB).</summary>
    public static ImageDecoderLimits Default { get; } = new();

    /// <summary>Largest accepted width.</summary>
    public int MaxWidth { get; init; } = 1 << 14;

    /// <summary>Largest accepted height.</summary>
    public int MaxHeight { get; init; } = 1 << 14;

    /// <summary>Largest accepted Width × Height.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Throws <see cref="ImageDecodeException"/> unless width × height is positive and within the caps.</summary>
    internal void Check(string source, long width, long height)
    {
        if (width <= 0 || height <= 0)
            throw new ImageDecodeException(source, $"invalid image size {width}x{height}");
        if (width > MaxWidth || height > MaxHeight || width * height > MaxPixels)
            throw new ImageDecodeException(source,
                $"image size {width}x{height} exceeds the decoder limits ({MaxWidth}x{MaxHeight}, {MaxPixels} pixels)");
    }
}
