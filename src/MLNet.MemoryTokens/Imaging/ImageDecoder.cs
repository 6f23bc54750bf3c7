namespace MLNet.MemoryTokens.Imaging;

/// <summary>The file formats <see cref="ImageDecoder"/> recognises by their leading bytes.</summary>
public enum ImageFormat { Unknown, Jpeg, Png, Bmp, Pnm }

/// <summary>Decodes JPEG, PNG, BMP and binary PPM/PGM files to <see cref="RgbImage"/>, choosing the format by its magic bytes.</summary>
public static class ImageDecoder
{
    /// <summary>
    /// Reads and decodes a file; the format comes from its content, not its extension. JPEGs are rotated/flipped by their
    /// EXIF orientation unless <paramref name="applyExifOrientation"/> is false (PIL's plain <c>Image.open</c> does not rotate).
    /// </summary>
    public static RgbImage Load(string path, ImageDecoderLimits? limits = null, bool applyExifOrientation = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] data;
        try
        {
            data = IO.InputFile.ReadAllBytes(path, Limits.MaxImageFileBytes, "image");   // regular files only, within the size limit
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDecodeException(path, $"cannot read the file: {e.Message}", inner: e);
        }
        return DecodeGuarded(data, path, limits ?? ImageDecoderLimits.Default, applyExifOrientation);
    }

    /// <summary>Decodes an in-memory file; <paramref name="sourceName"/> is used in error messages.</summary>
    public static RgbImage Decode(ReadOnlySpan<byte> data, string sourceName = "<memory>", ImageDecoderLimits? limits = null,
        bool applyExifOrientation = true)
        => DecodeGuarded(data, sourceName, limits ?? ImageDecoderLimits.Default, applyExifOrientation);

    /// <summary>Reads a whole stream and decodes it; errors name <paramref name="sourceName"/>.</summary>
    public static RgbImage Decode(Stream stream, string sourceName = "<stream>", ImageDecoderLimits? limits = null,
        bool applyExifOrientation = true)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return DecodeGuarded(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), sourceName,
            limits ?? ImageDecoderLimits.Default, applyExifOrientation);
    }

    /// <summary>The format announced by the first bytes, or <see cref="ImageFormat.Unknown"/>.</summary>
    public static ImageFormat DetectFormat(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat.Jpeg;
        if (data.Length >= 8 && data[..8].SequenceEqual(PngDecoder.Signature)) return ImageFormat.Png;
        if (data.Length >= 2 && data[0] == (byte)'B' && data[1] == (byte)'M') return ImageFormat.Bmp;
        if (data.Length >= 2 && data[0] == (byte)'P' && data[1] is >= (byte)'1' and <= (byte)'7') return ImageFormat.Pnm;
        return ImageFormat.Unknown;
    }

    /// <summary>
    /// The decoders validate their input and throw <see cref="ImageDecodeException"/> themselves; this last net only turns a
    /// decoder bug into an error that still names the file, instead of an IndexOutOfRange from deep inside.
    /// </summary>
    static RgbImage DecodeGuarded(ReadOnlySpan<byte> data, string source, ImageDecoderLimits limits, bool applyExif)
    {
        try
        {
            return DecodeCore(data, source, limits, applyExif);
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidOperationException
                                      or OverflowException or NullReferenceException or InvalidDataException)
        {
            throw new ImageDecodeException(source, $"malformed data ({e.GetType().Name}: {e.Message})", inner: e);
        }
    }

    /// <summary>Decoding without the safety net, so tests can prove the decoders never rely on it.</summary>
    internal static RgbImage DecodeCore(ReadOnlySpan<byte> data, string source, ImageDecoderLimits limits, bool applyExif)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (data.Length == 0) throw new ImageDecodeException(source, "the file is empty");
        return DetectFormat(data) switch
        {
            ImageFormat.Jpeg => JpegDecoder.Decode(data, source, limits, applyExif),
            ImageFormat.Png => PngDecoder.Decode(data, source, limits),
            ImageFormat.Bmp => BmpDecoder.Decode(data, source, limits),
            ImageFormat.Pnm => PnmDecoder.Decode(data, source, limits),
            _ => throw new ImageDecodeException(source,
                $"unrecognised image format (first bytes {Convert.ToHexString(data[..Math.Min(8, data.Length)])}); " +
                "expected JPEG, PNG, BMP or binary PPM/PGM", isNotSupported: true),
        };
    }
}
