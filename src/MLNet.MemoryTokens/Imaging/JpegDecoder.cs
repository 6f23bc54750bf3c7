using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MLNet.MemoryTokens.Imaging;

/// <summary>
/// Huffman-coded JPEG decoder, baseline/extended sequential and progressive (ITU T.81 Annexes B, F, G), 8-bit precision,
/// 1, 3 or 4 components, any sampling factors, restart markers. With libjpeg's integer IDCT, fancy upsampling and
/// fixed-point colour conversion reproduced, output equals libjpeg-turbo's (djpeg, PIL) bit for bit on the test files.
/// Damaged entropy data is handled like libjpeg: missing bits read as zeros, and once a segment runs dry the rest of it
/// stays at zero coefficients (grey) until the next restart marker. One difference: libjpeg smooths blocks of an
/// incomplete progressive image (truncated mid-way); we show the coefficients received so far as they are.
/// </summary>
internal sealed class JpegDecoder
{
    /// <summary>Guards against hostile files that repeat scans to multiply decoding work (libjpeg-turbo suggests a similar cap).</summary>
    const int MaxScans = 1000;

    /// <summary>Zig-zag index → natural (row-major) index of the 8×8 block (T.81 Figure A.6).</summary>
    internal static readonly byte[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    sealed class Component
    {
        public int Id, H, V, QuantIndex;
        public int Width, Height;                 // real samples: ceil(imageSize · factor / maxFactor)
        public int BlocksWide, BlocksHigh;        // blocks holding real samples (the extent of a non-interleaved scan)
        public int BlocksPerLine, BlocksPerColumn; // blocks in the MCU-padded grid (the extent of an interleaved scan)
        public byte[] Plane = [];
        public int Stride;
        public short[]? Coefs;                    // progressive only: every block's coefficients until the last scan
        public int[]? Quant;                      // dequantisation, natural order, latched at the component's first scan
        public int DcPred;
        public JpegHuffmanTable? Dc, Ac;
    }

    readonly string source;
    readonly ImageDecoderLimits limits;
    readonly ushort[]?[] quantTables = new ushort[4][];
    readonly JpegHuffmanTable?[] dcTables = new JpegHuffmanTable[4];
    readonly JpegHuffmanTable?[] acTables = new JpegHuffmanTable[4];
    Component[]? components;
    int width, height, hMax, vMax, mcusX, mcusY;
    bool progressive;
    int restartInterval;
    bool sawJfif;
    int adobeTransform = -1;
    int scanCount;
    int eobRun;
    /// <summary>The data ran out before the image was complete (no EOI, a cut trailer, or entropy data that ran dry): decoded
    /// as libjpeg does, and reported as a warning, as libjpeg's "Premature end of JPEG file".</summary>
    bool incomplete;

    /// <summary>EXIF orientation found in APP1 (1 when absent).</summary>
    public int Orientation { get; private set; } = 1;

    JpegDecoder(string source, ImageDecoderLimits limits)
    {
        this.source = source;
        this.limits = limits;
    }

    public static RgbImage Decode(ReadOnlySpan<byte> data, string source, ImageDecoderLimits limits, bool applyExif)
    {
        var decoder = new JpegDecoder(source, limits);
        var image = decoder.Run(data);
        image = applyExif ? ExifOrientation.Apply(image, decoder.Orientation) : image;
        return decoder.incomplete
            ? new RgbImage(image.Width, image.Height, image.Pixels) { Warning = "JPEG: the data ends before the image is complete (a truncated or damaged file); decoded as libjpeg does, the missing part grey" }
            : image;
    }

    ImageDecodeException Error(int offset, string what) => new(source, $"JPEG: {what} (at byte offset {offset})");

    ImageDecodeException NotSupported(int offset, string what) =>
        new(source, $"JPEG: {what} is not supported (at byte offset {offset})", isNotSupported: true);

    static int U16(ReadOnlySpan<byte> s, int i) => s[i] << 8 | s[i + 1];

    RgbImage Run(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4 || data[0] != 0xFF || data[1] != 0xD8) throw Error(0, "missing SOI marker, not a JPEG file");
        int pos = 2;
        while (true)
        {
            // Bytes between segments are junk (libjpeg warns and skips them); 0xFF runs are fill bytes before a marker.
            while (pos < data.Length && data[pos] != 0xFF) pos++;
            while (pos < data.Length && data[pos] == 0xFF) pos++;
            if (pos >= data.Length) { incomplete = true; break; } // no EOI: tolerated, as libjpeg does for truncated files (with a warning)
            int marker = data[pos++];
            int markerOffset = pos - 2;
            if (marker == 0xD9) break;                                   // EOI
            if (marker is 0x00 or 0x01 or 0xD8 or (>= 0xD0 and <= 0xD7)) continue; // stray stuffing, TEM, SOI, RSTn

            if (pos + 2 > data.Length || pos + U16(data, pos) > data.Length)
            {
                if (scanCount > 0) { incomplete = true; break; } // a truncated trailer after image data: keep what was decoded
                throw Error(markerOffset, $"segment 0xFF{marker:X2} is truncated by the end of the file");
            }
            int length = U16(data, pos);
            if (length < 2) throw Error(markerOffset, $"segment 0xFF{marker:X2} has an invalid length {length}");
            var segment = data.Slice(pos + 2, length - 2);
            int segmentOffset = pos + 2;
            pos += length;

            switch (marker)
            {
                case 0xC0 or 0xC1 or 0xC2:
                    ReadFrame(segment, marker == 0xC2, markerOffset);
                    break;
                case 0xC3 or 0xC5 or 0xC6 or 0xC7 or 0xCB or 0xCD or 0xCE or 0xCF:
                    throw NotSupported(markerOffset, $"lossless/hierarchical JPEG (SOF marker 0xFF{marker:X2})");
                case 0xC9 or 0xCA:
                    throw NotSupported(markerOffset, $"arithmetic-coded JPEG (SOF marker 0xFF{marker:X2})");
                case 0xC4:
                    ReadHuffmanTables(segment, segmentOffset);
                    break;
                case 0xDB:
                    ReadQuantTables(segment, segmentOffset);
                    break;
                case 0xDD:
                    if (segment.Length < 2) throw Error(markerOffset, "DRI segment is too short");
                    restartInterval = U16(segment, 0);
                    break;
                case 0xDA:
                    pos = ReadScan(data, segment, markerOffset, pos);
                    break;
                case 0xE0:
                    if (segment.StartsWith("JFIF\0"u8)) sawJfif = true;
                    break;
                case 0xE1:
                    if (segment.StartsWith("Exif\0\0"u8) && Orientation == 1)
                        Orientation = ExifOrientation.ReadFromTiff(segment[6..]);
                    break;
                case 0xEE:
                    if (segment.Length >= 12 && segment.StartsWith("Adobe"u8)) adobeTransform = segment[11];
                    break;
            }
        }
        if (components is null) throw Error(pos, "no frame header (SOF marker) before the end of the file");
        if (scanCount == 0) throw Error(pos, "no image data (SOS marker) before the end of the file");
        return Finish();
    }

    void ReadFrame(ReadOnlySpan<byte> s, bool isProgressive, int offset)
    {
        if (components is not null) throw Error(offset, "more than one frame header (SOF marker)");
        if (s.Length < 6) throw Error(offset, "SOF segment is too short");
        int precision = s[0];
        height = U16(s, 1);
        width = U16(s, 3);
        int count = s[5];
        if (precision == 12) throw NotSupported(offset, "12-bit sample precision");
        if (precision != 8) throw Error(offset, $"invalid sample precision {precision}");
        if (height == 0) throw NotSupported(offset, "image height given by a DNL marker (height 0 in SOF)");
        if (width == 0) throw Error(offset, "image width is 0");
        limits.Check(source, width, height);
        if (count is not (1 or 3 or 4)) throw NotSupported(offset, $"a frame with {count} components (only 1, 3 or 4)");
        if (s.Length < 6 + 3 * count) throw Error(offset, "SOF segment is too short for its component list");

        progressive = isProgressive;
        var comps = new Component[count];
        for (int i = 0; i < count; i++)
        {
            int id = s[6 + 3 * i], hv = s[7 + 3 * i], tq = s[8 + 3 * i];
            int h = hv >> 4, v = hv & 15;
            if (h is < 1 or > 4 || v is < 1 or > 4) throw Error(offset, $"component {id} has invalid sampling factors {h}x{v}");
            if (tq > 3) throw Error(offset, $"component {id} uses quantization table {tq} (0-3 allowed)");
            comps[i] = new Component { Id = id, H = h, V = v, QuantIndex = tq };
            hMax = Math.Max(hMax, h);
            vMax = Math.Max(vMax, v);
        }
        mcusX = (width + 8 * hMax - 1) / (8 * hMax);
        mcusY = (height + 8 * vMax - 1) / (8 * vMax);
        foreach (var c in comps)
        {
            c.Width = (int)(((long)width * c.H + hMax - 1) / hMax);
            c.Height = (int)(((long)height * c.V + vMax - 1) / vMax);
            c.BlocksWide = (c.Width + 7) / 8;
            c.BlocksHigh = (c.Height + 7) / 8;
            c.BlocksPerLine = mcusX * c.H;
            c.BlocksPerColumn = mcusY * c.V;
            c.Stride = c.BlocksPerLine * 8;
            long samples = (long)c.Stride * c.BlocksPerColumn * 8;
            if (samples > Array.MaxLength) throw Error(offset, "image is too large to decode in memory");
            c.Plane = new byte[samples];
            if (progressive) c.Coefs = new short[samples];
            else c.Plane.AsSpan().Fill(128); // blocks no scan reaches stay mid-grey, as zero coefficients would decode
        }
        components = comps;
    }

    void ReadQuantTables(ReadOnlySpan<byte> s, int offset)
    {
        int p = 0;
        while (p < s.Length)
        {
            int pq = s[p] >> 4, tq = s[p] & 15;
            p++;
            if (pq > 1 || tq > 3) throw Error(offset + p - 1, $"invalid DQT table spec 0x{s[p - 1]:X2}");
            int size = pq == 0 ? 64 : 128;
            if (p + size > s.Length) throw Error(offset, "DQT segment is truncated");
            var table = new ushort[64];
            for (int k = 0; k < 64; k++) table[ZigZag[k]] = (ushort)(pq == 0 ? s[p + k] : U16(s, p + 2 * k));
            quantTables[tq] = table;
            p += size;
        }
    }

    void ReadHuffmanTables(ReadOnlySpan<byte> s, int offset)
    {
        int p = 0;
        while (p < s.Length)
        {
            int tc = s[p] >> 4, th = s[p] & 15;
            if (tc > 1 || th > 3) throw Error(offset + p, $"invalid DHT table spec 0x{s[p]:X2}");
            if (p + 17 > s.Length) throw Error(offset, "DHT segment is truncated");
            var counts = s.Slice(p + 1, 16);
            int total = 0;
            foreach (var n in counts) total += n;
            if (total > 256 || p + 17 + total > s.Length)
                throw Error(offset + p, $"DHT table {(tc == 0 ? "DC" : "AC")}{th} declares {total} codes, more than it holds");
            var table = JpegHuffmanTable.Build(counts, s.Slice(p + 17, total), isDc: tc == 0)
                        ?? throw Error(offset + p, $"DHT table {(tc == 0 ? "DC" : "AC")}{th} has invalid code lengths");
            (tc == 0 ? dcTables : acTables)[th] = table;
            p += 17 + total;
        }
    }

    /// <summary>Parses an SOS header, decodes its entropy-coded data and returns the offset of the marker that ends it.</summary>
    int ReadScan(ReadOnlySpan<byte> data, ReadOnlySpan<byte> s, int offset, int dataStart)
    {
        if (components is null) throw Error(offset, "scan (SOS) before the frame header (SOF)");
        if (++scanCount > MaxScans) throw Error(offset, $"more than {MaxScans} scans");
        int n = s.Length > 0 ? s[0] : 0;
        if (n is < 1 or > 4 || s.Length < 4 + 2 * n) throw Error(offset, $"invalid SOS header ({n} components, {s.Length} bytes)");
        var scan = new Component[n];
        int blocksPerMcu = 0;
        for (int i = 0; i < n; i++)
        {
            int id = s[1 + 2 * i], td = s[2 + 2 * i] >> 4, ta = s[2 + 2 * i] & 15;
            var c = Array.Find(components, x => x.Id == id) ?? throw Error(offset, $"scan refers to unknown component {id}");
            if (Array.IndexOf(scan, c) >= 0) throw Error(offset, $"scan lists component {id} twice");
            if (td > 3 || ta > 3) throw Error(offset, $"scan uses Huffman table index > 3 for component {id}");
            c.Dc = dcTables[td];
            c.Ac = acTables[ta];
            scan[i] = c;
            blocksPerMcu += c.H * c.V;
        }
        int ss = s[1 + 2 * n], se = s[2 + 2 * n], ah = s[3 + 2 * n] >> 4, al = s[3 + 2 * n] & 15;
        if (n > 1 && blocksPerMcu > 10) throw Error(offset, $"interleaved scan has {blocksPerMcu} blocks per MCU (at most 10)");
        if (progressive)
        {
            bool bad = se > 63 || ss > se || (ss == 0 && se != 0) || (ss > 0 && n != 1) || al > 13 || (ah != 0 && ah != al + 1);
            if (bad) throw Error(offset, $"invalid progressive scan parameters Ss={ss} Se={se} Ah={ah} Al={al}");
        }
        else
        {
            ss = 0;
            se = 63;
            ah = al = 0;
        }
        foreach (var c in scan)
        {
            if (c.Quant is null)
            {
                var q = quantTables[c.QuantIndex] ?? throw Error(offset, $"component {c.Id} uses undefined quantization table {c.QuantIndex}");
                c.Quant = new int[64];
                for (int k = 0; k < 64; k++) c.Quant[k] = q[k];
            }
            bool needDc = ss == 0 && ah == 0, needAc = ss > 0 || !progressive;
            if (needDc && c.Dc is null) throw Error(offset, $"component {c.Id} uses an undefined DC Huffman table");
            if (needAc && c.Ac is null) throw Error(offset, $"component {c.Id} uses an undefined AC Huffman table");
            c.DcPred = 0;
        }
        eobRun = 0;

        var reader = new JpegBitReader(data, dataStart);
        DecodeScan(ref reader, scan, ss, se, ah, al);
        return JpegBitReader.FindMarker(data, reader.Position);
    }

    void DecodeScan(ref JpegBitReader reader, Component[] scan, int ss, int se, int ah, int al)
    {
        // A single-component scan walks that component's real blocks; an interleaved one walks the padded MCU grid.
        bool single = scan.Length == 1;
        int across = single ? scan[0].BlocksWide : mcusX;
        int down = single ? scan[0].BlocksHigh : mcusY;
        Span<short> block = stackalloc short[64];
        bool dry = false; // libjpeg's "insufficient data": the rest of this restart segment is left at zero
        int mcu = 0;
        for (int my = 0; my < down; my++)
        for (int mx = 0; mx < across; mx++, mcu++)
        {
            if (restartInterval > 0 && mcu > 0 && mcu % restartInterval == 0)
            {
                dry = !reader.ReadRestartMarker();
                incomplete |= dry;
                foreach (var c in scan) c.DcPred = 0;
                eobRun = 0;
            }
            if (single)
            {
                DecodeBlock(ref reader, scan[0], mx, my, ss, se, ah, al, dry, block);
            }
            else
            {
                foreach (var c in scan)
                    for (int v = 0; v < c.V; v++)
                    for (int h = 0; h < c.H; h++)
                        DecodeBlock(ref reader, c, mx * c.H + h, my * c.V + v, ss, se, ah, al, dry, block);
            }
            if (reader.Overrun) { dry = true; incomplete = true; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void DecodeBlock(ref JpegBitReader r, Component c, int bx, int by, int ss, int se, int ah, int al, bool dry, scoped Span<short> block)
    {
        if (!progressive)
        {
            int offset = by * 8 * c.Stride + bx * 8;
            if (dry)
            {
                JpegIdct.FillGrey(c.Plane, offset, c.Stride);
                return;
            }
            DecodeBaseline(ref r, c, block);
            JpegIdct.Transform(block, c.Quant, c.Plane, offset, c.Stride);
            return;
        }
        if (dry) return;
        var coefs = c.Coefs.AsSpan((by * c.BlocksPerLine + bx) * 64, 64);
        if (ss == 0)
        {
            if (ah == 0) DecodeDcFirst(ref r, c, coefs, al);
            else if (r.ReadBit() != 0) coefs[0] |= (short)(1 << al);
        }
        else if (ah == 0) DecodeAcFirst(ref r, c.Ac!, coefs, ss, se, al);
        else DecodeAcRefine(ref r, c.Ac!, coefs, ss, se, al);
    }

    /// <summary>One sequential-mode block (T.81 F.2.2): DC difference, then run/size-coded AC terms up to EOB. The AC loop keeps the bit buffer in locals (the reader's fields
    /// would be memory round trips per coefficient) and reads its tables without bounds checks: a 9-bit peek indexes the
    /// 512-entry tables, and a zig-zag position is used only after the check that it is at most 63.</summary>
    static void DecodeBaseline(ref JpegBitReader r, Component c, scoped Span<short> block)
    {
        block.Clear();
        r.Ensure();
        int s = r.DecodeSymbol(c.Dc!);
        if (s != 0) c.DcPred += r.ReceiveExtend(s);
        block[0] = (short)c.DcPred;
        var ac = c.Ac!;
        // the zig-zag order sits after the 512 lookups in the same array: one register fewer in a loop that has none to spare
        ref int fastAc = ref MemoryMarshal.GetArrayDataReference(ac.FastAc);
        ref short coef = ref MemoryMarshal.GetReference(block);
        ulong bits = r.bits;
        int count = r.count;
        for (int k = 1; k < 64; k++)
        {
            if (count < 32) { r.bits = bits; r.count = count; r.Fill(); bits = r.bits; count = r.count; }
            int peek = (int)(bits >> (64 - JpegHuffmanTable.FastBits));
            int fast = Unsafe.Add(ref fastAc, peek);
            if (fast != 0)
            {
                // Short code and its extra bits resolved by one lookup: value, run and total length.
                int n = fast & 15;
                bits <<= n;
                count -= n;
                k += (fast >> 4) & 15;
                if (k > 63) break;
                Unsafe.Add(ref coef, Unsafe.Add(ref fastAc, JpegHuffmanTable.ZigZagAt + k)) = (short)(fast >> 8);
                continue;
            }
            int rs, e = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ac.Fast), peek);
            if (e != 0)
            {
                rs = e & 0xFF;
                bits <<= e >> 8;
                count -= e >> 8;
            }
            else
            {
                r.bits = bits; r.count = count;
                rs = r.DecodeSymbol(ac);   // a code longer than 9 bits
                bits = r.bits; count = r.count;
            }
            int run = rs >> 4;
            s = rs & 15;
            if (s != 0)
            {
                k += run;
                if (k > 63) break; // corrupt run past the block end: drop it rather than write outside
                // s (1..15) extra bits, mapped to a signed value (T.81 F.2.2.1 EXTEND)
                int v = (int)(bits >> (64 - s));
                bits <<= s;
                count -= s;
                Unsafe.Add(ref coef, Unsafe.Add(ref fastAc, JpegHuffmanTable.ZigZagAt + k)) = (short)(v < 1 << (s - 1) ? v - (1 << s) + 1 : v);
            }
            else
            {
                if (run != 15) break; // EOB
                k += 15;              // ZRL: sixteen zeros
            }
        }
        r.bits = bits;
        r.count = count;
    }

    /// <summary>Progressive DC, first scan (G.1.2.1): the difference scaled by 2^Al.</summary>
    static void DecodeDcFirst(ref JpegBitReader r, Component c, Span<short> coefs, int al)
    {
        r.Ensure();
        int s = r.DecodeSymbol(c.Dc!);
        if (s != 0) c.DcPred += r.ReceiveExtend(s);
        coefs[0] = (short)(c.DcPred << al);
    }

    /// <summary>Progressive AC, first scan of band Ss..Se (G.1.2.2), with end-of-band runs spanning blocks.</summary>
    void DecodeAcFirst(ref JpegBitReader r, JpegHuffmanTable ac, Span<short> coefs, int ss, int se, int al)
    {
        if (eobRun > 0)
        {
            eobRun--;
            return;
        }
        var zigzag = ZigZag;
        for (int k = ss; k <= se; k++)
        {
            r.Ensure();
            int rs = r.DecodeSymbol(ac);
            int run = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += run;
                if (k > se) break;
                coefs[zigzag[k]] = (short)(r.ReceiveExtend(s) * (1 << al));
            }
            else if (run == 15)
            {
                k += 15;
            }
            else
            {
                eobRun = (1 << run) - 1; // EOBn: this block plus 2^n − 1 + extra following blocks end here
                if (run > 0) eobRun += r.ReadBits(run);
                break;
            }
        }
    }

    /// <summary>
    /// Progressive AC refinement (G.1.2.3): every already-nonzero coefficient passed gets one correction bit; newly
    /// nonzero ones (always ±1 at this bit) are placed after skipping <c>run</c> still-zero coefficients.
    /// </summary>
    void DecodeAcRefine(ref JpegBitReader r, JpegHuffmanTable ac, Span<short> coefs, int ss, int se, int al)
    {
        int plus = 1 << al, minus = -1 << al;
        var zigzag = ZigZag;
        int k = ss;
        if (eobRun == 0)
        {
            for (; k <= se; k++)
            {
                r.Ensure();
                int rs = r.DecodeSymbol(ac);
                int run = rs >> 4, s = rs & 15;
                int value = 0;
                if (s != 0)
                {
                    value = r.ReadBit() != 0 ? plus : minus; // s must be 1 here; other sizes are corrupt, read as 1
                }
                else if (run != 15)
                {
                    eobRun = 1 << run; // counts this block too: it is finished by the correction loop below
                    if (run > 0) eobRun += r.ReadBits(run);
                    break;
                }
                for (; k <= se; k++)
                {
                    int z = zigzag[k];
                    if (coefs[z] != 0)
                    {
                        if (r.ReadBit() != 0 && (coefs[z] & plus) == 0)
                            coefs[z] += (short)(coefs[z] >= 0 ? plus : minus);
                    }
                    else
                    {
                        if (run == 0) break;
                        run--;
                    }
                }
                if (value != 0 && k <= se) coefs[zigzag[k]] = (short)value;
            }
        }
        if (eobRun > 0)
        {
            for (; k <= se; k++)
            {
                int z = zigzag[k];
                if (coefs[z] != 0 && r.ReadBit() != 0 && (coefs[z] & plus) == 0)
                    coefs[z] += (short)(coefs[z] >= 0 ? plus : minus);
            }
            eobRun--;
        }
    }

    RgbImage Finish()
    {
        var comps = components!;
        var planes = new JpegPlane[comps.Length];
        for (int i = 0; i < comps.Length; i++)
        {
            var c = comps[i];
            if (progressive)
            {
                if (c.Quant is null) c.Plane.AsSpan().Fill(128); // never scanned: zero coefficients
                else
                    for (int by = 0; by < c.BlocksHigh; by++)
                    for (int bx = 0; bx < c.BlocksWide; bx++)
                        JpegIdct.Transform(c.Coefs.AsSpan((by * c.BlocksPerLine + bx) * 64, 64), c.Quant, c.Plane,
                            by * 8 * c.Stride + bx * 8, c.Stride);
                c.Coefs = null;
            }
            planes[i] = new JpegPlane { Samples = c.Plane, Stride = c.Stride, Width = c.Width, Height = c.Height, H = c.H, V = c.V };
        }
        return JpegColor.ToRgb(planes, width, height, hMax, vMax, ColorSpace(comps));
    }

    /// <summary>libjpeg's rules: JFIF means YCbCr; else Adobe's transform flag; else component ids 'R','G','B' mean RGB.</summary>
    JpegColorSpace ColorSpace(Component[] comps)
    {
        if (comps.Length == 1) return JpegColorSpace.Gray;
        if (comps.Length == 4) return adobeTransform == 2 ? JpegColorSpace.Ycck : JpegColorSpace.Cmyk;
        if (sawJfif) return JpegColorSpace.YCbCr;
        if (adobeTransform >= 0) return adobeTransform == 0 ? JpegColorSpace.Rgb : JpegColorSpace.YCbCr;
        return comps[0].Id == 'R' && comps[1].Id == 'G' && comps[2].Id == 'B' ? JpegColorSpace.Rgb : JpegColorSpace.YCbCr;
    }
}

/// <summary>A canonical Huffman table (T.81 Annex C) with a 9-bit lookahead table for the common short codes.</summary>
internal sealed class JpegHuffmanTable
{
    public const int FastBits = 9;

    /// <summary>Indexed by the next 9 bits: (code length &lt;&lt; 8) | symbol, or 0 when the code is longer than 9 bits.</summary>
    public readonly ushort[] Fast = new ushort[1 << FastBits];

    /// <summary>Largest code of each length (−1 if none) and the offset from a code of that length to its symbol index.</summary>
    public readonly int[] MaxCode = new int[17], ValueOffset = new int[17];

    public readonly byte[] Values = new byte[256];

    /// <summary>
    /// For AC tables, indexed like <see cref="Fast"/>: when a code and its extra bits both fit in the 9 bits,
    /// (coefficient &lt;&lt; 8) | (run &lt;&lt; 4) | total bits, so a whole coefficient costs one lookup; 0 otherwise.
    /// </summary>
    public readonly int[] FastAc = NewFastAc();

    /// <summary>Where <see cref="FastAc"/> holds the zig-zag order (natural index of each zig-zag position) after its lookups.</summary>
    public const int ZigZagAt = 1 << FastBits;

    static int[] NewFastAc()
    {
        var t = new int[ZigZagAt + 64];
        for (int k = 0; k < 64; k++) t[ZigZagAt + k] = JpegDecoder.ZigZag[k];
        return t;
    }

    /// <summary>Builds the table, or returns null when the lengths over-fill the code space or a DC symbol exceeds 15.</summary>
    public static JpegHuffmanTable? Build(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> values, bool isDc)
    {
        var t = new JpegHuffmanTable();
        values.CopyTo(t.Values);
        if (isDc)
            foreach (var v in values)
                if (v > 15) return null;
        int code = 0, k = 0;
        for (int len = 1; len <= 16; len++)
        {
            t.ValueOffset[len] = k - code;
            for (int i = 0; i < counts[len - 1]; i++, code++, k++)
            {
                if (code >= 1 << len) return null;
                if (len <= FastBits)
                {
                    int shift = FastBits - len;
                    t.Fast.AsSpan(code << shift, 1 << shift).Fill((ushort)(len << 8 | values[k]));
                }
            }
            t.MaxCode[len] = counts[len - 1] > 0 ? code - 1 : -1;
            code <<= 1;
        }
        if (!isDc)
        {
            for (int i = 0; i < t.Fast.Length; i++)
            {
                int e = t.Fast[i], len = e >> 8, run = (e >> 4) & 15, size = e & 15;
                if (e == 0 || size == 0 || len + size > FastBits) continue;
                int extra = (i >> (FastBits - len - size)) & ((1 << size) - 1);
                int value = extra < 1 << (size - 1) ? extra - (1 << size) + 1 : extra;
                t.FastAc[i] = value << 8 | run << 4 | (len + size);
            }
        }
        return t;
    }
}

/// <summary>
/// Reads entropy-coded bits MSB first, removing 0xFF00 stuffing. It stops at a marker or the end of the data and from
/// there supplies zero bits, counting them so a decoder can tell that it ran past the real data.
/// </summary>
internal ref struct JpegBitReader
{
    readonly ReadOnlySpan<byte> data;
    int pos;
    internal ulong bits;       // left-aligned: the next bit is bit 63 (the block decoder keeps it in a local while it runs)
    internal int count;        // valid bits in `bits`
    int padBits;      // how many of them are zero padding past the real data
    bool atMarker;

    public JpegBitReader(ReadOnlySpan<byte> data, int position)
    {
        this.data = data;
        pos = position;
    }

    /// <summary>Offset of the first byte not yet pulled into the bit buffer.</summary>
    public readonly int Position => pos;

    /// <summary>True once more bits were consumed than the segment really held.</summary>
    public readonly bool Overrun => count < padBits;

    /// <summary>Makes sure at least 32 bits are buffered: enough for one Huffman code plus its extra bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Ensure()
    {
        if (count < 32) Fill();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]   // kept out of the block decoder's loop: its registers are for the coefficients
    internal void Fill()
    {
        // Fast path: the next 8 bytes contain no 0xFF, so as many whole bytes as fit can be taken at once.
        if (!atMarker && pos + 8 <= data.Length)
        {
            ulong v = BinaryPrimitives.ReadUInt64BigEndian(data[pos..]);
            ulong inverted = ~v;
            if (((inverted - 0x0101010101010101UL) & ~inverted & 0x8080808080808080UL) == 0)
            {
                int take = (64 - count) >> 3;
                bits |= v >> (64 - 8 * take) << (64 - 8 * take - count);
                pos += take;
                count += 8 * take;
                return;
            }
        }
        while (count <= 56)
        {
            int b = 0;
            if (!atMarker && pos < data.Length)
            {
                b = data[pos];
                if (b != 0xFF) pos++;
                else if (pos + 1 < data.Length && data[pos + 1] == 0) pos += 2; // stuffed 0xFF data byte
                else
                {
                    atMarker = true; // a marker (or a lone 0xFF at the very end) ends the segment
                    b = 0;
                    padBits += 8;
                }
            }
            else
            {
                padBits += 8;
            }
            bits |= (ulong)(uint)b << (56 - count);
            count += 8;
        }
    }

    /// <summary>Decodes one Huffman symbol; call <see cref="Ensure"/> first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int DecodeSymbol(JpegHuffmanTable t)
    {
        int e = t.Fast[(int)(bits >> (64 - JpegHuffmanTable.FastBits))];
        if (e != 0)
        {
            Consume(e >> 8);
            return e & 0xFF;
        }
        return DecodeLong(t);
    }

    int DecodeLong(JpegHuffmanTable t)
    {
        int code16 = (int)(bits >> 48);
        for (int len = JpegHuffmanTable.FastBits + 1; len <= 16; len++)
        {
            int code = code16 >> (16 - len);
            if (code <= t.MaxCode[len])
            {
                Consume(len);
                return t.Values[(code + t.ValueOffset[len]) & 0xFF];
            }
        }
        Consume(16); // no such code: corrupt data. libjpeg substitutes a zero symbol and carries on; so do we.
        return 0;
    }

    /// <summary>The next <see cref="JpegHuffmanTable.FastBits"/> bits, not consumed; call <see cref="Ensure"/> first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int PeekFast() => (int)(bits >> (64 - JpegHuffmanTable.FastBits));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Skip(int n) => Consume(n);

    /// <summary>Reads s (1..15) extra bits and maps them to a signed value (T.81 F.2.2.1 EXTEND).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReceiveExtend(int s)
    {
        int v = (int)(bits >> (64 - s));
        Consume(s);
        return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
    }

    /// <summary>Reads 1..16 bits as an unsigned value.</summary>
    public int ReadBits(int n)
    {
        Ensure();
        int v = (int)(bits >> (64 - n));
        Consume(n);
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadBit()
    {
        Ensure();
        int v = (int)(bits >> 63);
        Consume(1);
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    void Consume(int n)
    {
        bits <<= n;
        count -= n;
    }

    /// <summary>
    /// At a restart boundary: drops the partial byte, skips to the next marker and consumes it if it is RSTn.
    /// Returns false when some other marker (or the end) is there, i.e. this segment's data is missing.
    /// </summary>
    public bool ReadRestartMarker()
    {
        bits = 0;
        count = padBits = 0;
        int m = FindMarker(data, pos);
        if (m + 1 < data.Length && data[m + 1] is >= 0xD0 and <= 0xD7)
        {
            pos = m + 2;
            atMarker = false;
            return true;
        }
        pos = m;
        atMarker = true;
        return false;
    }

    /// <summary>Offset of the next marker (0xFF followed by neither 0x00 nor 0xFF) at or after <paramref name="from"/>.</summary>
    public static int FindMarker(ReadOnlySpan<byte> data, int from)
    {
        int p = Math.Max(from, 0);
        while (p + 1 < data.Length)
        {
            if (data[p] == 0xFF && data[p + 1] != 0x00 && data[p + 1] != 0xFF) return p;
            p++;
        }
        return data.Length;
    }
}
