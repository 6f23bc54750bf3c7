using System.Buffers.Binary;
using System.Numerics;

namespace MLNet.MemoryTokens.Imaging;

/// <summary>
/// Windows BMP decoder: OS/2 core (12-byte), BITMAPINFOHEADER and its V2–V5 extensions; 1/4/8-bit palettes, 16/24/32-bit
/// BI_RGB and BI_BITFIELDS, bottom-up or top-down. RLE and embedded JPEG/PNG compressions are refused as not supported.
/// Bitfield channels narrower than 8 bits expand as v·255/max (PIL's rounding down), wider ones keep their top 8 bits.
/// </summary>
internal static class BmpDecoder
{
    public static RgbImage Decode(ReadOnlySpan<byte> data, string source, ImageDecoderLimits limits)
    {
        ImageDecodeException Error(string what) => new(source, "BMP: " + what);
        ImageDecodeException NotSupported(string what) => new(source, $"BMP: {what} is not supported", isNotSupported: true);

        if (data.Length < 14 + 12 || data[0] != 'B' || data[1] != 'M') throw Error("file is too short or lacks the 'BM' magic");
        uint dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(data[10..]);
        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(data[14..]);
        if (headerSize != 12 && headerSize < 16 || headerSize > 4096 || 14 + headerSize > data.Length)
            throw Error($"invalid or truncated DIB header (size {headerSize})");
        var header = data.Slice(14, (int)headerSize);

        long width, height;
        int bpp;
        uint compression = 0, colorsUsed = 0;
        bool topDown = false;
        int paletteEntrySize = 4;
        if (headerSize == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(header[4..]);
            height = BinaryPrimitives.ReadUInt16LittleEndian(header[6..]);
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(header[10..]);
            paletteEntrySize = 3;
        }
        else
        {
            if (headerSize < 40 && headerSize != 16 && headerSize != 64) throw Error($"unknown DIB header size {headerSize}");
            var h = headerSize >= 40 ? header : Pad(header, 40);
            width = BinaryPrimitives.ReadInt32LittleEndian(h[4..]);
            height = BinaryPrimitives.ReadInt32LittleEndian(h[8..]);
            bpp = BinaryPrimitives.ReadUInt16LittleEndian(h[14..]);
            compression = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
            colorsUsed = BinaryPrimitives.ReadUInt32LittleEndian(h[32..]);
            if (height < 0)
            {
                topDown = true;
                height = -height;
            }
        }
        limits.Check(source, width, height);

        // Channel masks: explicit for BI_BITFIELDS (inside a V2+ header or right after a 40-byte one), else the defaults.
        uint rMask = 0, gMask = 0, bMask = 0;
        int tableStart = 14 + (int)headerSize;
        switch (compression)
        {
            case 0:
                if (bpp == 16) (rMask, gMask, bMask) = (0x7C00u, 0x03E0u, 0x001Fu);
                if (bpp == 32) (rMask, gMask, bMask) = (0xFF0000u, 0xFF00u, 0xFFu);
                break;
            case 3 or 6:
                if (bpp is not (16 or 32)) throw Error($"BI_BITFIELDS with {bpp} bits per pixel");
                ReadOnlySpan<byte> m;
                if (headerSize >= 52) m = header.Slice(40, 12);
                else
                {
                    if (tableStart + 12 > data.Length) throw Error("bitfield masks are truncated");
                    m = data.Slice(tableStart, 12);
                    tableStart += compression == 6 ? 16 : 12;
                }
                rMask = BinaryPrimitives.ReadUInt32LittleEndian(m);
                gMask = BinaryPrimitives.ReadUInt32LittleEndian(m[4..]);
                bMask = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
                break;
            case 1 or 2:
                throw NotSupported($"RLE compression (BI_RLE{(compression == 1 ? 8 : 4)})");
            case 4 or 5:
                throw NotSupported($"embedded {(compression == 4 ? "JPEG" : "PNG")} data");
            default:
                throw Error($"unknown compression type {compression}");
        }
        if (bpp is not (1 or 4 or 8 or 16 or 24 or 32)) throw NotSupported($"{bpp} bits per pixel");

        // Palette: colorsUsed entries (0 = all 2^bpp), BGR0 (or BGR in core headers) right after the header/masks.
        var palette = new byte[256 * 3];
        if (bpp <= 8)
        {
            long entries = colorsUsed == 0 || colorsUsed > (1u << bpp) ? 1L << bpp : colorsUsed;
            long available = (Math.Min(dataOffset, (uint)data.Length) - tableStart) / paletteEntrySize;
            entries = Math.Min(entries, available); // short palettes (seen in the wild): missing entries read as black
            if (entries <= 0) throw Error("palette image without a colour table");
            for (int i = 0; i < entries; i++)
            {
                int p = tableStart + i * paletteEntrySize;
                palette[3 * i] = data[p + 2];
                palette[3 * i + 1] = data[p + 1];
                palette[3 * i + 2] = data[p];
            }
        }

        long stride = (width * bpp + 31) / 32 * 4;
        long needed = stride * height;
        if (dataOffset > data.Length || data.Length - dataOffset < needed)
            throw Error($"pixel data is truncated: {Math.Max(0, data.Length - (long)dataOffset)} of {needed} bytes at offset {dataOffset}");

        int w = (int)width, hgt = (int)height;
        var image = new RgbImage(w, hgt);
        var dst = image.Pixels;
        var r = new Channel(rMask);
        var g = new Channel(gMask);
        var b = new Channel(bMask);
        for (int y = 0; y < hgt; y++)
        {
            int fileRow = topDown ? y : hgt - 1 - y; // rows are stored bottom-up unless the height is negative
            var row = data.Slice((int)(dataOffset + fileRow * stride), (int)stride);
            int d = y * w * 3;
            switch (bpp)
            {
                case 24:
                    for (int x = 0, s = 0; x < w; x++, s += 3, d += 3)
                    {
                        dst[d] = row[s + 2];
                        dst[d + 1] = row[s + 1];
                        dst[d + 2] = row[s];
                    }
                    break;
                case 16 or 32:
                    for (int x = 0; x < w; x++, d += 3)
                    {
                        uint v = bpp == 16 ? BinaryPrimitives.ReadUInt16LittleEndian(row[(2 * x)..])
                            : BinaryPrimitives.ReadUInt32LittleEndian(row[(4 * x)..]);
                        dst[d] = r.Extract(v);
                        dst[d + 1] = g.Extract(v);
                        dst[d + 2] = b.Extract(v);
                    }
                    break;
                default:
                    int mask = (1 << bpp) - 1;
                    for (int x = 0; x < w; x++, d += 3)
                    {
                        int bit = x * bpp;
                        int index = (row[bit >> 3] >> (8 - bpp - (bit & 7))) & mask;
                        dst[d] = palette[3 * index];
                        dst[d + 1] = palette[3 * index + 1];
                        dst[d + 2] = palette[3 * index + 2];
                    }
                    break;
            }
        }
        return image;
    }

    static ReadOnlySpan<byte> Pad(ReadOnlySpan<byte> header, int size)
    {
        var padded = new byte[size];
        header.CopyTo(padded);
        return padded;
    }

    /// <summary>One colour channel of a bitfield pixel: shift the mask down, then scale its width to 8 bits.</summary>
    readonly struct Channel
    {
        readonly uint mask;
        readonly int shift, bits;

        public Channel(uint mask)
        {
            this.mask = mask;
            shift = mask == 0 ? 0 : BitOperations.TrailingZeroCount(mask);
            bits = mask == 0 ? 0 : BitOperations.PopCount(mask >> shift);
        }

        public byte Extract(uint pixel)
        {
            if (bits == 0) return 0;
            uint v = (pixel & mask) >> shift;
            // Min() only matters for masks with holes, where v can exceed the popcount's range.
            return (byte)Math.Min(255u, bits >= 8 ? v >> (bits - 8) : v * 255 / ((1u << bits) - 1));
        }
    }
}
