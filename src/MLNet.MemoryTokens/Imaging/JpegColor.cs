using System.Runtime.Intrinsics;

namespace MLNet.MemoryTokens.Imaging;

/// <summary>How the decoded JPEG components map to RGB.</summary>
internal enum JpegColorSpace { Gray, YCbCr, Rgb, Cmyk, Ycck }

/// <summary>One decoded component: its samples at its own resolution, and its sampling factors.</summary>
internal sealed class JpegPlane
{
    public required byte[] Samples;
    public required int Stride;
    /// <summary>The component's real size, ceil(imageSize · factor / maxFactor) (T.81 A.1.1); the rest of the plane is MCU padding.</summary>
    public required int Width, Height;
    public required int H, V;
}

/// <summary>
/// Chroma upsampling and colour conversion, reproducing libjpeg-turbo's defaults (djpeg, PIL): "fancy" triangle-filter
/// upsampling for 2:1 ratios, pixel replication otherwise, and JFIF YCbCr→RGB in 16-bit fixed point.
/// </summary>
internal static class JpegColor
{
    const int ScaleBits = 16;
    const int Half = 1 << (ScaleBits - 1);

    // JFIF: R = Y + 1.402 Cr, G = Y − 0.34414 Cb − 0.71414 Cr, B = Y + 1.772 Cb, with Cb, Cr centred on 128.
    // Tabulated in the same fixed point libjpeg uses, so rounding lands on the same integers.
    static readonly int[] CrToR = new int[256], CbToB = new int[256], CrToG = new int[256], CbToG = new int[256];

    static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);
    static readonly int CrR = Fix(1.40200), CbB = Fix(1.77200), CrG = Fix(0.71414), CbG = Fix(0.34414);

    static JpegColor()
    {
        for (int i = 0; i < 256; i++)
        {
            int c = i - 128;
            CrToR[i] = (CrR * c + Half) >> ScaleBits;
            CbToB[i] = (CbB * c + Half) >> ScaleBits;
            CrToG[i] = -CrG * c;
            CbToG[i] = -CbG * c + Half;
        }
    }

    /// <summary>Upsamples every plane to <paramref name="width"/>×<paramref name="height"/> and converts to interleaved RGB.</summary>
    public static RgbImage ToRgb(JpegPlane[] planes, int width, int height, int hMax, int vMax, JpegColorSpace space)
    {
        var image = new RgbImage(width, height);
        var rgb = image.Pixels;
        int n = planes.Length;
        var buffers = new byte[n][];
        for (int c = 0; c < n; c++) buffers[c] = new byte[Math.Max(width, 2 * planes[c].Width) + 16];
        var rows = new ReadOnlyMemory<byte>[n];

        for (int y = 0; y < height; y++)
        {
            for (int c = 0; c < n; c++) rows[c] = UpsampleRow(planes[c], y, width, hMax, vMax, buffers[c]);
            var o = rgb.AsSpan(y * width * 3, width * 3);
            switch (space)
            {
                case JpegColorSpace.Gray:
                    Gray(rows[0].Span, o, width);
                    break;
                case JpegColorSpace.Rgb:
                    Interleave(rows[0].Span, rows[1].Span, rows[2].Span, o, width);
                    break;
                case JpegColorSpace.YCbCr:
                    YCbCr(rows[0].Span, rows[1].Span, rows[2].Span, o, width);
                    break;
                default:
                    Cmyk(rows[0].Span, rows[1].Span, rows[2].Span, rows[3].Span, o, width, space == JpegColorSpace.Ycck);
                    break;
            }
        }
        return image;
    }

    /// <summary>Output row <paramref name="y"/> of a plane at full resolution (at least <paramref name="width"/> samples).</summary>
    static ReadOnlyMemory<byte> UpsampleRow(JpegPlane p, int y, int width, int hMax, int vMax, byte[] buffer)
    {
        bool fancy = p.Width > 2; // libjpeg-turbo falls back to replication for components 1 or 2 samples wide
        int hRatio = hMax % p.H == 0 ? hMax / p.H : 0;
        int vRatio = vMax % p.V == 0 ? vMax / p.V : 0;
        if (hRatio == 1 && vRatio == 1) return p.Samples.AsMemory(y * p.Stride, width);

        if (vRatio == 1 && hRatio == 2 && fancy)
        {
            H2V1Fancy(p.Samples.AsSpan(y * p.Stride, p.Width), buffer, p.Width);
            return buffer;
        }
        if (vRatio == 2 && (hRatio == 2 || hRatio == 1) && fancy)
        {
            // The nearer input row weighs 3/4, the one on the far side of this output row 1/4; edges repeat the last real row.
            int near = Math.Min(y >> 1, p.Height - 1);
            int far = (y & 1) == 0 ? Math.Max(near - 1, 0) : Math.Min(near + 1, p.Height - 1);
            var nearRow = p.Samples.AsSpan(near * p.Stride, p.Width);
            var farRow = p.Samples.AsSpan(far * p.Stride, p.Width);
            if (hRatio == 2) H2V2Fancy(nearRow, farRow, buffer, p.Width);
            else H1V2Fancy(nearRow, farRow, buffer, p.Width, (y & 1) == 0 ? 1 : 2);
            return buffer;
        }

        // Replication (libjpeg's behaviour for other integer ratios); non-integer ratios map each output sample to the input
        // sample covering it, which libjpeg refuses outright.
        int sy = Math.Min((int)((long)y * p.V / vMax), p.Height - 1);
        var src = p.Samples.AsSpan(sy * p.Stride, p.Width);
        for (int x = 0; x < width; x++) buffer[x] = src[Math.Min((int)((long)x * p.H / hMax), p.Width - 1)];
        return buffer;
    }

    /// <summary>Horizontal 2× triangle filter: each output is ¾ of its own input sample + ¼ of the neighbour on its side.</summary>
    static void H2V1Fancy(ReadOnlySpan<byte> s, Span<byte> o, int n)
    {
        o[0] = s[0];
        o[1] = (byte)((s[0] * 3 + s[1] + 2) >> 2);
        int i = 1;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 9 <= n; i += 8)
            {
                var cur = Load8(s, i) * 3;
                var even = (cur + Load8(s, i - 1) + Vector128.Create((ushort)1)) >> 2;
                var odd = (cur + Load8(s, i + 1) + Vector128.Create((ushort)2)) >> 2;
                (even | (odd << 8)).AsByte().CopyTo(o.Slice(2 * i, 16)); // little-endian: even byte, then odd byte
            }
        }
        for (; i < n - 1; i++)
        {
            int c = s[i] * 3;
            o[2 * i] = (byte)((c + s[i - 1] + 1) >> 2);     // alternating +1/+2 biases avoid a systematic rounding drift
            o[2 * i + 1] = (byte)((c + s[i + 1] + 2) >> 2);
        }
        o[2 * n - 2] = (byte)((s[n - 1] * 3 + s[n - 2] + 1) >> 2);
        o[2 * n - 1] = s[n - 1];
    }

    /// <summary>2×2 triangle filter: column sums 3·near + far, then the horizontal 3:1 blend, 1/16 overall.</summary>
    static void H2V2Fancy(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<byte> o, int n)
    {
        int first = near[0] * 3 + far[0], last = near[n - 1] * 3 + far[n - 1];
        o[0] = (byte)((first * 4 + 8) >> 4);
        o[1] = (byte)((first * 3 + near[1] * 3 + far[1] + 7) >> 4);
        int i = 1;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i + 9 <= n; i += 8)
            {
                var prev = Load8(near, i - 1) * 3 + Load8(far, i - 1);
                var cur = (Load8(near, i) * 3 + Load8(far, i)) * 3;
                var next = Load8(near, i + 1) * 3 + Load8(far, i + 1);
                var even = (cur + prev + Vector128.Create((ushort)8)) >> 4;
                var odd = (cur + next + Vector128.Create((ushort)7)) >> 4;
                (even | (odd << 8)).AsByte().CopyTo(o.Slice(2 * i, 16));
            }
        }
        for (; i < n - 1; i++)
        {
            int cur = (near[i] * 3 + far[i]) * 3;
            o[2 * i] = (byte)((cur + near[i - 1] * 3 + far[i - 1] + 8) >> 4);
            o[2 * i + 1] = (byte)((cur + near[i + 1] * 3 + far[i + 1] + 7) >> 4);
        }
        o[2 * n - 2] = (byte)((last * 3 + near[n - 2] * 3 + far[n - 2] + 8) >> 4);
        o[2 * n - 1] = (byte)((last * 4 + 7) >> 4);
    }

    /// <summary>Vertical-only 2× triangle filter (4:4:0): ¾ near row + ¼ far row.</summary>
    static void H1V2Fancy(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<byte> o, int n, int bias)
    {
        int i = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            var b = Vector128.Create((ushort)bias);
            for (; i + 16 <= n; i += 16)
            {
                var (nLo, nHi) = Vector128.Widen(Vector128.Create(near.Slice(i, 16)));
                var (fLo, fHi) = Vector128.Widen(Vector128.Create(far.Slice(i, 16)));
                Vector128.Narrow((nLo * 3 + fLo + b) >> 2, (nHi * 3 + fHi + b) >> 2).CopyTo(o.Slice(i, 16));
            }
        }
        for (; i < n; i++) o[i] = (byte)((near[i] * 3 + far[i] + bias) >> 2);
    }

    /// <summary>Eight bytes from s[i..] as 16-bit lanes.</summary>
    static Vector128<ushort> Load8(ReadOnlySpan<byte> s, int i) =>
        Vector128.WidenLower(Vector128.CreateScalar(BitConverter.ToUInt64(s.Slice(i, 8))).AsByte());

    static void Gray(ReadOnlySpan<byte> g, Span<byte> o, int width)
    {
        for (int x = 0, j = 0; x < width; x++, j += 3) o[j] = o[j + 1] = o[j + 2] = g[x];
    }

    static void Interleave(ReadOnlySpan<byte> r, ReadOnlySpan<byte> g, ReadOnlySpan<byte> b, Span<byte> o, int width)
    {
        for (int x = 0, j = 0; x < width; x++, j += 3)
        {
            o[j] = r[x];
            o[j + 1] = g[x];
            o[j + 2] = b[x];
        }
    }

    static void YCbCr(ReadOnlySpan<byte> yRow, ReadOnlySpan<byte> cbRow, ReadOnlySpan<byte> crRow, Span<byte> o, int width)
    {
        yRow = yRow[..width];
        cbRow = cbRow[..width];
        crRow = crRow[..width];
        o = o[..(width * 3)];
        var crR = CrToR;
        var cbB = CbToB;
        var crG = CrToG;
        var cbG = CbToG;
        int x = Vector256.IsHardwareAccelerated ? YCbCrVector(yRow, cbRow, crRow, o) : 0;
        for (int j = 3 * x; x < yRow.Length; x++, j += 3)
        {
            int luma = yRow[x], cb = cbRow[x], cr = crRow[x];
            o[j] = Clamp(luma + crR[cr]);
            o[j + 1] = Clamp(luma + ((cbG[cb] + crG[cr]) >> ScaleBits));
            o[j + 2] = Clamp(luma + cbB[cb]);
        }
    }

    // Byte shuffles that interleave 16 R, 16 G and 16 B samples into 48 bytes of RGB (index 0xFF selects zero).
    static readonly Vector128<byte>[] InterleaveMasks = BuildInterleaveMasks();

    static Vector128<byte>[] BuildInterleaveMasks()
    {
        var masks = new Vector128<byte>[9]; // [part * 3 + channel]
        Span<byte> m = stackalloc byte[16];
        for (int part = 0; part < 3; part++)
        for (int channel = 0; channel < 3; channel++)
        {
            for (int i = 0; i < 16; i++)
            {
                int p = part * 16 + i;
                m[i] = p % 3 == channel ? (byte)(p / 3) : (byte)0xFF;
            }
            masks[part * 3 + channel] = Vector128.Create((ReadOnlySpan<byte>)m);
        }
        return masks;
    }

    /// <summary>
    /// The same fixed-point arithmetic as the tables, 16 pixels per step in 32-bit lanes; returns how many pixels it did.
    /// </summary>
    static int YCbCrVector(ReadOnlySpan<byte> yRow, ReadOnlySpan<byte> cbRow, ReadOnlySpan<byte> crRow, Span<byte> o)
    {
        var masks = InterleaveMasks;
        int x = 0;
        for (; x + 16 <= yRow.Length; x += 16)
        {
            var (r0, g0, b0) = Convert8(yRow.Slice(x, 8), cbRow.Slice(x, 8), crRow.Slice(x, 8));
            var (r1, g1, b1) = Convert8(yRow.Slice(x + 8, 8), cbRow.Slice(x + 8, 8), crRow.Slice(x + 8, 8));
            var r = Pack(r0, r1);
            var g = Pack(g0, g1);
            var b = Pack(b0, b1);
            var dst = o.Slice(3 * x, 48);
            for (int part = 0; part < 3; part++)
                (Vector128.Shuffle(r, masks[part * 3]) | Vector128.Shuffle(g, masks[part * 3 + 1]) | Vector128.Shuffle(b, masks[part * 3 + 2]))
                    .CopyTo(dst.Slice(16 * part, 16));
        }
        return x;
    }

    static (Vector256<int> R, Vector256<int> G, Vector256<int> B) Convert8(ReadOnlySpan<byte> y, ReadOnlySpan<byte> cb, ReadOnlySpan<byte> cr)
    {
        var yv = Widen8(y);
        var cbv = Widen8(cb) - Vector256.Create(128);
        var crv = Widen8(cr) - Vector256.Create(128);
        var half = Vector256.Create(Half);
        var r = yv + Vector256.ShiftRightArithmetic(crv * Vector256.Create(CrR) + half, ScaleBits);
        var g = yv + Vector256.ShiftRightArithmetic(cbv * Vector256.Create(-CbG) + crv * Vector256.Create(-CrG) + half, ScaleBits);
        var b = yv + Vector256.ShiftRightArithmetic(cbv * Vector256.Create(CbB) + half, ScaleBits);
        return (r, g, b);
    }

    static Vector256<int> Widen8(ReadOnlySpan<byte> s)
    {
        var u16 = Load8(s, 0);
        return Vector256.Create(Vector128.WidenLower(u16), Vector128.WidenUpper(u16)).AsInt32();
    }

    static Vector128<byte> Pack(Vector256<int> a, Vector256<int> b)
    {
        var zero = Vector256<int>.Zero;
        var max = Vector256.Create(255);
        var shorts = Vector256.Narrow(Vector256.Min(Vector256.Max(a, zero), max).AsUInt32(), Vector256.Min(Vector256.Max(b, zero), max).AsUInt32());
        return Vector128.Narrow(shorts.GetLower(), shorts.GetUpper());
    }

    /// <summary>
    /// CMYK as PIL renders it: samples are taken as Adobe-inverted (PIL's "CMYK;I"), then R = (255−K)·(1−C/255) etc.
    /// YCCK is first turned back into those inverted CMY samples (255 − the YCbCr→RGB result), as libjpeg does.
    /// </summary>
    static void Cmyk(ReadOnlySpan<byte> c0, ReadOnlySpan<byte> c1, ReadOnlySpan<byte> c2, ReadOnlySpan<byte> k,
        Span<byte> o, int width, bool ycck)
    {
        for (int x = 0, j = 0; x < width; x++, j += 3)
        {
            int a = c0[x], b = c1[x], c = c2[x];
            if (ycck)
            {
                int luma = a, cb = b, cr = c;
                a = 255 - Clamp(luma + CrToR[cr]);
                b = 255 - Clamp(luma + ((CbToG[cb] + CrToG[cr]) >> ScaleBits));
                c = 255 - Clamp(luma + CbToB[cb]);
            }
            int nk = k[x]; // 255 − K with K = 255 − stored
            o[j] = (byte)(nk - MulDiv255(255 - a, nk));
            o[j + 1] = (byte)(nk - MulDiv255(255 - b, nk));
            o[j + 2] = (byte)(nk - MulDiv255(255 - c, nk));
        }
    }

    /// <summary>round(a·b/255) for bytes, exactly as PIL computes it.</summary>
    static int MulDiv255(int a, int b)
    {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    static byte Clamp(int v) => (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
}
