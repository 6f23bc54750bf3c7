namespace MLNet.MemoryTokens.Imaging;

/// <summary>
/// Binary Netpbm decoder: P6 (RGB) and P5 (grey, replicated to RGB), comments allowed anywhere in the header, any maxval
/// 1–65535 (two bytes per sample above 255). Samples are rescaled as round(v / maxval · 255), as PIL does for RGB.
/// </summary>
internal static class PnmDecoder
{
    public static RgbImage Decode(ReadOnlySpan<byte> data, string source, ImageDecoderLimits limits)
    {
        ImageDecodeException Error(string what) => new(source, "PNM: " + what);

        if (data.Length < 2 || data[0] != 'P') throw Error("missing 'P' magic");
        if (data[1] is not ((byte)'5' or (byte)'6'))
            throw new ImageDecodeException(source, $"PNM: format P{(char)data[1]} is not supported (only binary P5 and P6)", isNotSupported: true);
        int channels = data[1] == '6' ? 3 : 1;
        int pos = 2;
        long width = ReadNumber(data, ref pos, "width", source);
        long height = ReadNumber(data, ref pos, "height", source);
        long maxval = ReadNumber(data, ref pos, "maxval", source);
        // Exactly one whitespace byte separates the header from the samples (which may themselves look like whitespace).
        if (pos >= data.Length || !IsSpace(data[pos])) throw Error($"header is not followed by whitespace at offset {pos}");
        pos++;
        limits.Check(source, width, height);
        if (maxval is < 1 or > 65535) throw Error($"maxval {maxval} is outside 1..65535");

        int bytesPerSample = maxval > 255 ? 2 : 1;
        long needed = width * height * channels * bytesPerSample;
        if (data.Length - pos < needed) throw Error($"pixel data is truncated: {data.Length - pos} of {needed} bytes");
        var samples = data.Slice(pos, (int)needed);

        var lut = maxval == 255 ? null : new byte[maxval + 1];
        if (lut is not null)
            for (int v = 0; v <= maxval; v++) lut[v] = (byte)Math.Round(v / (double)maxval * 255.0, MidpointRounding.ToEven);

        var image = new RgbImage((int)width, (int)height);
        var dst = image.Pixels;
        long count = width * height * channels;
        for (long i = 0; i < count; i++)
        {
            int v = bytesPerSample == 1 ? samples[(int)i] : samples[(int)(2 * i)] << 8 | samples[(int)(2 * i + 1)];
            byte b = lut is null ? (byte)v : lut[Math.Min(v, (int)maxval)]; // samples above maxval are invalid: clamp
            if (channels == 3) dst[i] = b;
            else dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = b;
        }
        return image;
    }

    static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;

    /// <summary>Skips whitespace and '#' comments, then reads a decimal number that must end at whitespace or a comment.</summary>
    static long ReadNumber(ReadOnlySpan<byte> data, ref int pos, string what, string source)
    {
        while (pos < data.Length)
        {
            if (IsSpace(data[pos])) pos++;
            else if (data[pos] == '#')
                while (pos < data.Length && data[pos] != '\n' && data[pos] != '\r') pos++;
            else break;
        }
        int start = pos;
        long value = 0;
        while (pos < data.Length && data[pos] is >= (byte)'0' and <= (byte)'9')
        {
            value = value * 10 + (data[pos] - '0');
            if (value > int.MaxValue) throw new ImageDecodeException(source, $"PNM: {what} at offset {start} is too large");
            pos++;
        }
        if (pos == start)
            throw new ImageDecodeException(source, pos >= data.Length
                ? $"PNM: header is truncated before the {what}"
                : $"PNM: expected the {what} at offset {pos}, found byte 0x{data[pos]:X2}");
        if (pos < data.Length && !IsSpace(data[pos]) && data[pos] != '#')
            throw new ImageDecodeException(source, $"PNM: unexpected byte 0x{data[pos]:X2} after the {what} at offset {pos}");
        return value;
    }
}
