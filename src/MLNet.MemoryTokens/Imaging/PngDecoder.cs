using System.Buffers.Binary;
using System.IO.Compression;

namespace MLNet.MemoryTokens.Imaging;

/// <summary>
/// PNG decoder (PNG specification, 3rd ed.): every colour type and bit depth, all five filters, Adam7, any IDAT split,
/// CRC-checked chunks. Alpha and tRNS are dropped (like PIL's convert("RGB"), no compositing); 16-bit samples keep their
/// high byte (value &gt;&gt; 8, as PIL does for RGB; for 16-bit grey PIL clips to 255 instead, which we do not copy).
/// </summary>
internal static class PngDecoder
{
    internal static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    public static RgbImage Decode(ReadOnlySpan<byte> data, string source, ImageDecoderLimits limits)
    {
        ImageDecodeException Error(string what) => new(source, "PNG: " + what);

        if (data.Length < 8 || !data[..8].SequenceEqual(Signature)) throw Error("missing PNG signature");
        int width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null;
        using var compressed = new MemoryStream();
        bool sawIend = false;
        int pos = 8;
        while (pos < data.Length)
        {
            if (pos + 12 > data.Length) throw Error($"chunk header at offset {pos} is truncated");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[pos..]);
            var typeBytes = data.Slice(pos + 4, 4);
            string type = ChunkName(typeBytes);
            if (length > int.MaxValue || pos + 12 + (long)length > data.Length)
                throw Error($"chunk '{type}' at offset {pos} is truncated (declares {length} bytes, {data.Length - pos - 12} remain)");
            var body = data.Slice(pos + 8, (int)length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(data[(pos + 8 + (int)length)..]);
            if (Crc32.Compute(data.Slice(pos + 4, 4 + (int)length)) != stored)
                throw Error($"CRC mismatch in chunk '{type}' at offset {pos}");
            if (pos == 8 && type != "IHDR") throw Error($"first chunk is '{type}', expected 'IHDR'");

            switch (type)
            {
                case "IHDR":
                    if (pos != 8) throw Error($"second IHDR chunk at offset {pos}");
                    if (length != 13) throw Error($"IHDR has length {length}, expected 13");
                    uint w = BinaryPrimitives.ReadUInt32BigEndian(body), h = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
                    limits.Check(source, w, h);
                    width = (int)w;
                    height = (int)h;
                    depth = body[8];
                    colorType = body[9];
                    interlace = body[12];
                    if (body[10] != 0 || body[11] != 0) throw Error($"unknown compression ({body[10]}) or filter method ({body[11]})");
                    if (interlace > 1) throw Error($"unknown interlace method {interlace}");
                    bool valid = colorType switch
                    {
                        0 => depth is 1 or 2 or 4 or 8 or 16,
                        3 => depth is 1 or 2 or 4 or 8,
                        2 or 4 or 6 => depth is 8 or 16,
                        _ => false,
                    };
                    if (!valid) throw Error($"invalid colour type {colorType} with bit depth {depth}");
                    break;
                case "PLTE":
                    if (length % 3 != 0 || length == 0 || length > 768) throw Error($"PLTE has invalid length {length}");
                    palette = new byte[768]; // entries past the end stay black
                    body.CopyTo(palette);
                    break;
                case "IDAT":
                    compressed.Write(body);
                    break;
                case "IEND":
                    sawIend = true;
                    break;
                default:
                    // Bit 5 of the first letter clear = critical: we must understand it to render correctly.
                    if ((typeBytes[0] & 0x20) == 0)
                        throw new ImageDecodeException(source, $"PNG: unknown critical chunk '{type}' at offset {pos}", isNotSupported: true);
                    break;
            }
            pos += 12 + (int)length;
            if (sawIend) break;
        }
        if (colorType < 0) throw Error("no IHDR chunk");
        if (compressed.Length == 0) throw Error("no IDAT chunk (no image data)");
        if (colorType == 3 && palette is null) throw Error("palette image without a PLTE chunk");

        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        int bitsPerPixel = channels * depth;
        (int X0, int Y0, int Dx, int Dy)[] passes = interlace == 1 ? Adam7 : [(0, 0, 1, 1)];
        long expected = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            long pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw > 0 && ph > 0) expected += ph * (1 + (pw * bitsPerPixel + 7) / 8);
        }
        if (expected > Array.MaxLength) throw Error("image is too large to decode in memory");
        var raw = Inflate(compressed, (int)expected, source);

        var image = new RgbImage(width, height);
        int offset = 0;
        for (int p = 0; p < passes.Length; p++)
        {
            var (x0, y0, dx, dy) = passes[p];
            int pw = (width - x0 + dx - 1) / dx, ph = (height - y0 + dy - 1) / dy;
            if (pw <= 0 || ph <= 0) continue;
            int rowBytes = (int)(((long)pw * bitsPerPixel + 7) / 8);
            int bpp = Math.Max(1, bitsPerPixel / 8);
            for (int r = 0; r < ph; r++)
            {
                int filter = raw[offset];
                var row = raw.AsSpan(offset + 1, rowBytes);
                var prior = r == 0 ? Span<byte>.Empty : raw.AsSpan(offset - rowBytes, rowBytes);
                if (!Unfilter(filter, row, prior, bpp))
                    throw Error($"invalid filter type {filter} in row {r}{(interlace == 1 ? $" of Adam7 pass {p + 1}" : "")}");
                int y = y0 + r * dy;
                ExpandRow(row, pw, colorType, depth, palette, image.Pixels, (y * width + x0) * 3, dx * 3);
                offset += 1 + rowBytes;
            }
        }
        return image;
    }

    static string ChunkName(ReadOnlySpan<byte> t)
    {
        Span<char> c = stackalloc char[4];
        for (int i = 0; i < 4; i++) c[i] = t[i] is >= 0x20 and < 0x7F ? (char)t[i] : '?';
        return new string(c);
    }

    /// <summary>
    /// Inflates exactly the bytes the image needs. Output never exceeds <paramref name="expected"/>, which the header (and the
    /// limits) bound, so a decompression bomb costs at most that much memory; the buffer grows only as real data arrives.
    /// </summary>
    static byte[] Inflate(MemoryStream compressed, int expected, string source)
    {
        compressed.Position = 0;
        var buffer = new byte[Math.Min(expected, Math.Max(1 << 16, (int)Math.Min(int.MaxValue / 8, compressed.Length) * 4))];
        int filled = 0;
        try
        {
            using var z = new ZLibStream(compressed, CompressionMode.Decompress);
            while (filled < expected)
            {
                if (filled == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(expected, 2L * buffer.Length));
                int n = z.Read(buffer, filled, buffer.Length - filled);
                if (n == 0) break;
                filled += n;
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException) // zlib also reports some damage as ZLibException : IOException
        {
            throw new ImageDecodeException(source, $"PNG: corrupt compressed image data (IDAT): {e.Message}", inner: e);
        }
        if (filled < expected)
            throw new ImageDecodeException(source, $"PNG: image data (IDAT) is truncated: {filled} of {expected} bytes");
        return buffer;
    }

    /// <summary>Reverses one row's filter in place (PNG spec 7.3/9.2); prior is empty for the first row of a pass.</summary>
    static bool Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prior, int bpp)
    {
        int n = row.Length;
        switch (filter)
        {
            case 0:
                return true;
            case 1:
                for (int i = bpp; i < n; i++) row[i] += row[i - bpp];
                return true;
            case 2:
                if (prior.IsEmpty) return true;
                for (int i = 0; i < n; i++) row[i] += prior[i];
                return true;
            case 3:
                if (prior.IsEmpty)
                {
                    for (int i = bpp; i < n; i++) row[i] += (byte)(row[i - bpp] >> 1);
                    return true;
                }
                for (int i = 0; i < bpp && i < n; i++) row[i] += (byte)(prior[i] >> 1);
                for (int i = bpp; i < n; i++) row[i] += (byte)((row[i - bpp] + prior[i]) >> 1);
                return true;
            case 4:
                if (prior.IsEmpty)
                {
                    for (int i = bpp; i < n; i++) row[i] += row[i - bpp]; // Paeth with a zero row above is Sub
                    return true;
                }
                for (int i = 0; i < bpp && i < n; i++) row[i] += prior[i];
                for (int i = bpp; i < n; i++) row[i] += Paeth(row[i - bpp], prior[i], prior[i - bpp]);
                return true;
            default:
                return false;
        }
    }

    static byte Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
    }

    /// <summary>Writes <paramref name="count"/> pixels of an unfiltered row as RGB, <paramref name="step"/> bytes apart.</summary>
    static void ExpandRow(ReadOnlySpan<byte> row, int count, int colorType, int depth, byte[]? palette, byte[] dst, int d, int step)
    {
        if (depth < 8)
        {
            int mask = (1 << depth) - 1, scale = colorType == 0 ? 255 / mask : 0;
            for (int i = 0; i < count; i++, d += step)
            {
                int bit = i * depth;
                int v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & mask;
                if (colorType == 3)
                {
                    dst[d] = palette![v * 3];
                    dst[d + 1] = palette[v * 3 + 1];
                    dst[d + 2] = palette[v * 3 + 2];
                }
                else
                {
                    dst[d] = dst[d + 1] = dst[d + 2] = (byte)(v * scale);
                }
            }
            return;
        }
        int bytes = depth / 8; // 1 or 2; for 16-bit the big-endian high byte comes first
        switch (colorType)
        {
            case 3:
                for (int i = 0; i < count; i++, d += step)
                {
                    int v = row[i] * 3;
                    dst[d] = palette![v];
                    dst[d + 1] = palette[v + 1];
                    dst[d + 2] = palette[v + 2];
                }
                break;
            case 0 or 4:
            {
                int stride = (colorType == 0 ? 1 : 2) * bytes;
                for (int i = 0, s = 0; i < count; i++, d += step, s += stride) dst[d] = dst[d + 1] = dst[d + 2] = row[s];
                break;
            }
            default:
            {
                int stride = (colorType == 2 ? 3 : 4) * bytes;
                for (int i = 0, s = 0; i < count; i++, d += step, s += stride)
                {
                    dst[d] = row[s];
                    dst[d + 1] = row[s + bytes];
                    dst[d + 2] = row[s + 2 * bytes];
                }
                break;
            }
        }
    }
}

/// <summary>CRC-32 (ISO-HDLC, the PNG/zlib polynomial), slicing by 8 bytes per step.</summary>
internal static class Crc32
{
    static readonly uint[] Table = BuildTable();

    static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        for (int n = 0; n < 256; n++)
            for (int s = 1; s < 8; s++)
                t[s * 256 + n] = (t[(s - 1) * 256 + n] >> 8) ^ t[t[(s - 1) * 256 + n] & 0xFF];
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var t = Table;
        uint crc = 0xFFFFFFFFu;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            uint lo = crc ^ BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
            uint hi = BinaryPrimitives.ReadUInt32LittleEndian(data[(i + 4)..]);
            crc = t[7 * 256 + (lo & 0xFF)] ^ t[6 * 256 + ((lo >> 8) & 0xFF)] ^ t[5 * 256 + ((lo >> 16) & 0xFF)] ^ t[4 * 256 + (lo >> 24)]
                ^ t[3 * 256 + (hi & 0xFF)] ^ t[2 * 256 + ((hi >> 8) & 0xFF)] ^ t[256 + ((hi >> 16) & 0xFF)] ^ t[hi >> 24];
        }
        for (; i < data.Length; i++) crc = t[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }
}
