namespace MLNet.MemoryTokens.Imaging;

/// <summary>EXIF orientation (TIFF tag 0x0112, values 1–8): reading it from a JPEG and applying it to decoded pixels.</summary>
public static class ExifOrientation
{
    /// <summary>The orientation stored in a JPEG's APP1 Exif segment, or 1 (upright) when there is none or it is unreadable.</summary>
    public static int ReadFromJpeg(ReadOnlySpan<byte> jpeg)
    {
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return 1;
        int pos = 2;
        while (pos + 4 <= jpeg.Length && jpeg[pos] == 0xFF)
        {
            int marker = jpeg[pos + 1];
            if (marker == 0xFF) { pos++; continue; }
            if (marker is 0xDA or 0xD9) break; // metadata lives before the first scan
            int length = jpeg[pos + 2] << 8 | jpeg[pos + 3];
            if (length < 2 || pos + 2 + length > jpeg.Length) break;
            var segment = jpeg.Slice(pos + 4, length - 2);
            if (marker == 0xE1 && segment.StartsWith("Exif\0\0"u8)) return ReadFromTiff(segment[6..]);
            pos += 2 + length;
        }
        return 1;
    }

    /// <summary>Finds tag 0x0112 in IFD0 of a TIFF structure (the Exif payload after "Exif\0\0"); 1 if absent or invalid.</summary>
    internal static int ReadFromTiff(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8) return 1;
        bool little;
        if (tiff[0] == 'I' && tiff[1] == 'I') little = true;
        else if (tiff[0] == 'M' && tiff[1] == 'M') little = false;
        else return 1;
        if (U16(tiff, little, 2) != 42) return 1;
        long ifd = U32(tiff, little, 4);
        if (ifd < 8 || ifd + 2 > tiff.Length) return 1;
        int entries = U16(tiff, little, (int)ifd);
        for (int i = 0; i < entries; i++)
        {
            int e = (int)ifd + 2 + 12 * i;
            if (e + 12 > tiff.Length) break;
            if (U16(tiff, little, e) != 0x0112) continue;
            int type = U16(tiff, little, e + 2);
            long value = type switch { 3 => U16(tiff, little, e + 8), 4 => U32(tiff, little, e + 8), _ => 0 }; // SHORT (the standard) or LONG
            return value is >= 1 and <= 8 ? (int)value : 1;
        }
        return 1;
    }

    /// <summary>
    /// Returns the image as it should be displayed for an EXIF orientation, matching PIL's <c>ImageOps.exif_transpose</c>:
    /// 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
    /// Orientation 1 (or any value outside 2–8) returns the same instance.
    /// </summary>
    public static RgbImage Apply(RgbImage image, int orientation)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (orientation is < 2 or > 8) return image;
        int w = image.Width, h = image.Height;
        bool swap = orientation >= 5;
        int ow = swap ? h : w, oh = swap ? w : h;
        var result = new RgbImage(ow, oh);
        var src = image.Pixels;
        var dst = result.Pixels;
        for (int oy = 0; oy < oh; oy++)
        {
            // (sx, sy) of output (0, oy) and the source step for each step right in the output.
            (int sx, int sy, int dx, int dy) = orientation switch
            {
                2 => (w - 1, oy, -1, 0),
                3 => (w - 1, h - 1 - oy, -1, 0),
                4 => (0, h - 1 - oy, 1, 0),
                5 => (oy, 0, 0, 1),
                6 => (oy, h - 1, 0, -1),
                7 => (w - 1 - oy, h - 1, 0, -1),
                _ => (w - 1 - oy, 0, 0, 1), // 8
            };
            int s = (sy * w + sx) * 3, step = (dy * w + dx) * 3;
            int d = oy * ow * 3;
            for (int ox = 0; ox < ow; ox++, s += step, d += 3)
            {
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return result;
    }

    static int U16(ReadOnlySpan<byte> t, bool little, int i) => little ? t[i] | t[i + 1] << 8 : t[i] << 8 | t[i + 1];

    static long U32(ReadOnlySpan<byte> t, bool little, int i) => little
        ? (uint)(t[i] | t[i + 1] << 8 | t[i + 2] << 16 | t[i + 3] << 24)
        : (uint)(t[i] << 24 | t[i + 1] << 16 | t[i + 2] << 8 | t[i + 3]);
}
