namespace MLNet.MemoryTokens.Imaging;

/// <summary>Resize, crop and normalisation with the semantics of PIL/torchvision, i.e. what timm's eval transform does.</summary>
public static class ImageTransforms
{
    /// <summary>
    /// Resizes like PIL's <c>Image.resize((width, height), resample)</c> (within ±1 level): separable convolution with the
    /// filter support widened by the downscale factor. With <paramref name="antialias"/> false the support is not widened
    /// (torchvision's tensor resize with antialias=False; bicubic keeps a = −0.5 and PIL's edge normalisation, so it is
    /// close to but not bit-identical with torch's a = −0.75 kernel). Nearest ignores <paramref name="antialias"/>.
    /// </summary>
    public static RgbImage Resize(RgbImage src, int width, int height, Interpolation interpolation, bool antialias = true)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (!Enum.IsDefined(interpolation)) throw new ArgumentOutOfRangeException(nameof(interpolation));
        if (width == src.Width && height == src.Height) return new RgbImage(width, height, (byte[])src.Pixels.Clone());
        return Resampler.Resize(src, width, height, interpolation, antialias);
    }

    /// <summary>
    /// torchvision's <c>Resize(size)</c> with an int: the shorter side becomes <paramref name="size"/>, the longer one
    /// <c>int(size · long / short)</c> (truncated, as torchvision computes it).
    /// </summary>
    public static RgbImage ResizeShorterSide(RgbImage src, int size, Interpolation interpolation, bool antialias = true)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        var (w, h) = ShorterSideSize(src.Width, src.Height, size);
        return Resize(src, w, h, interpolation, antialias);
    }

    /// <summary>The (width, height) <see cref="ResizeShorterSide"/> produces.</summary>
    public static (int Width, int Height) ShorterSideSize(int width, int height, int size)
    {
        if (width <= height) return (size, Math.Max(1, (int)((double)size * height / width)));
        return (Math.Max(1, (int)((double)size * width / height)), size);
    }

    /// <summary>
    /// torchvision's <c>CenterCrop</c>: offsets <c>int(round((in − out) / 2))</c> with Python's round-half-to-even; a source
    /// smaller than the crop is first padded with zeros, (out − in) / 2 on the left/top and the rest on the right/bottom.
    /// </summary>
    public static RgbImage CenterCrop(RgbImage src, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        var (left, top) = CenterCropOffset(src.Width, src.Height, width, height);
        var dst = new RgbImage(width, height);
        // Copy the overlap of the crop window [left, left + width) with the source; everything else stays 0.
        int x0 = Math.Max(0, left), x1 = Math.Min(src.Width, left + width);
        if (x1 <= x0) return dst;
        for (int y = 0; y < height; y++)
        {
            int sy = top + y;
            if (sy < 0 || sy >= src.Height) continue;
            src.Pixels.AsSpan((sy * src.Width + x0) * 3, (x1 - x0) * 3).CopyTo(dst.Pixels.AsSpan((y * width + x0 - left) * 3));
        }
        return dst;
    }

    /// <summary>Where <see cref="CenterCrop"/>'s window starts in source coordinates (negative when it pads).</summary>
    public static (int Left, int Top) CenterCropOffset(int srcWidth, int srcHeight, int width, int height)
    {
        static int Offset(int size, int crop)
        {
            int pad = crop > size ? (crop - size) / 2 : 0;
            int padded = crop > size ? crop : size; // pad = (crop−size)//2 before, the rest after: total = crop
            return (int)Math.Round((padded - crop) / 2.0, MidpointRounding.ToEven) - pad;
        }
        return (Offset(srcWidth, width), Offset(srcHeight, height));
    }

    /// <summary>Scale to [0,1], then (x − mean[c]) / std[c] in float32, written planar CHW into dest (length 3·H·W).</summary>
    public static void ToNormalizedChw(RgbImage src, ReadOnlySpan<float> mean, ReadOnlySpan<float> std, Span<float> dest)
    {
        ArgumentNullException.ThrowIfNull(src);
        if (mean.Length != 3 || std.Length != 3) throw new ArgumentException("mean and std need one value per channel (3).");
        int plane = src.Width * src.Height;
        if (dest.Length != 3 * plane)
            throw new ArgumentException($"dest has {dest.Length} floats, expected 3 x {src.Height} x {src.Width} = {3 * plane}.", nameof(dest));

        // Per channel, a 256-entry table of the exact float32 torchvision computes: (v / 255 − mean) / std.
        Span<float> lut = stackalloc float[3 * 256];
        for (int c = 0; c < 3; c++)
        {
            if (std[c] == 0) throw new ArgumentException($"std[{c}] is zero.", nameof(std));
            for (int v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255f - mean[c]) / std[c];
        }
        var r = dest[..plane];
        var g = dest.Slice(plane, plane);
        var b = dest.Slice(2 * plane, plane);
        var lr = lut[..256];
        var lg = lut.Slice(256, 256);
        var lb = lut.Slice(512, 256);
        var px = src.Pixels;
        for (int i = 0, p = 0; i < plane; i++, p += 3)
        {
            r[i] = lr[px[p]];
            g[i] = lg[px[p + 1]];
            b[i] = lb[px[p + 2]];
        }
    }

    /// <summary>
    /// timm's eval transform: resize the shorter side to floor(inputSize / cropFraction), center-crop inputSize, then
    /// <see cref="ToNormalizedChw"/> into dest (length 3·inputSize²). E.g. ViT: 224, 0.9, Bicubic, mean = std = 0.5.
    /// </summary>
    public static void Preprocess(RgbImage src, int inputSize, double cropFraction, Interpolation interpolation,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> std, Span<float> dest) =>
        ToNormalizedChw(ResizeCrop(src, inputSize, cropFraction, interpolation), mean, std, dest);

    /// <summary>
    /// The geometric part of <see cref="Preprocess"/>: the shorter side resized to floor(inputSize / cropFraction), then the
    /// center inputSize² — as 8-bit RGB. Equal to <see cref="ResizeShorterSide"/> followed by <see cref="CenterCrop"/>, computing
    /// only the pixels the crop keeps.
    /// </summary>
    public static RgbImage ResizeCrop(RgbImage src, int inputSize, double cropFraction, Interpolation interpolation)
    {
        ArgumentNullException.ThrowIfNull(src);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        if (!(cropFraction > 0 && cropFraction <= 1)) throw new ArgumentOutOfRangeException(nameof(cropFraction), "must be in (0, 1].");
        if (!Enum.IsDefined(interpolation)) throw new ArgumentOutOfRangeException(nameof(interpolation));
        int scaleSize = (int)Math.Floor(inputSize / cropFraction);
        var (w, h) = ShorterSideSize(src.Width, src.Height, scaleSize);
        var (left, top) = CenterCropOffset(w, h, inputSize, inputSize);
        // The crop always fits here (the shorter side is at least inputSize), so only the cropped pixels are resampled:
        // identical to resizing everything and cropping, with less work.
        return left >= 0 && top >= 0 && left + inputSize <= w && top + inputSize <= h
            ? Resampler.ResizeWindow(src, w, h, interpolation, antialias: true, left, top, inputSize, inputSize)
            : CenterCrop(Resize(src, w, h, interpolation), inputSize, inputSize);
    }
}
