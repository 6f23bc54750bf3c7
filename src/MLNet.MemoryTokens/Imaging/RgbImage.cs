namespace MLNet.MemoryTokens.Imaging;

/// <summary>An 8-bit RGB image: interleaved HWC, row-major, <c>Pixels.Length == Width * Height * 3</c>.</summary>
public sealed class RgbImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Pixel bytes R, G, B for (0,0), (1,0), … row by row.</summary>
    public byte[] Pixels { get; }

    /// <summary>Wraps <paramref name="pixels"/> (not copied), or allocates a black image when it is null.</summary>
    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        long length = (long)width * height * 3;
        if (length > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(width), $"{width}x{height} RGB does not fit in one array.");
        if (pixels is not null && pixels.Length != length)
            throw new ArgumentException($"Expected {length} bytes for {width}x{height} RGB, got {pixels.Length}.", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels ?? new byte[length];
    }

    /// <summary>What the decoder noticed but did not refuse (a truncated JPEG decoded as libjpeg does), or null.</summary>
    public string? Warning { get; init; }

    /// <summary>Bytes per row (<c>Width * 3</c>).</summary>
    public int Stride => Width * 3;

    /// <summary>The three bytes of pixel (x, y).</summary>
    public Span<byte> PixelAt(int x, int y)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"({x}, {y}) is outside {Width}x{Height}.");
        return Pixels.AsSpan((y * Width + x) * 3, 3);
    }
}
