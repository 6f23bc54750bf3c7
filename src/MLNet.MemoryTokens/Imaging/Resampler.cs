using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.MemoryTokens.Imaging;

/// <summary>
/// PIL's separable convolution resize (Pillow's Resample.c semantics, reimplemented): per-axis weight tables, filter support
/// widened by the downscale factor (PIL's built-in antialiasing), weights normalised to sum 1 and stored in 22-bit fixed
/// point, horizontal pass first with rounding to 8 bits in between, then the vertical pass.
/// </summary>
internal static class Resampler
{
    const int PrecisionBits = 32 - 8 - 2;
    const int Rounding = 1 << (PrecisionBits - 1);

    /// <summary>For each output index: the first input index, how many inputs, and their fixed-point weights (stride Size).</summary>
    internal sealed class Kernel
    {
        public required int[] Start, Count, Weights;
        public required int Size;
    }

    internal static Kernel BuildKernel(int inSize, int outSize, Interpolation filter, bool antialias)
    {
        double baseSupport = filter == Interpolation.Bilinear ? 1.0 : 2.0;
        double scale = (double)inSize / outSize;
        // Downscaling stretches the filter over 'scale' input pixels so every input contributes (antialiasing).
        double filterScale = antialias ? Math.Max(scale, 1.0) : 1.0;
        double support = baseSupport * filterScale;
        int size = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * size];
        var k = new double[size];
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int lo = Math.Max((int)(center - support + 0.5), 0);
            int n = Math.Min(Math.Min((int)(center + support + 0.5), inSize) - lo, size);
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double w = Filter(filter, (i + lo - center + 0.5) / filterScale);
                k[i] = w;
                sum += w;
            }
            for (int i = 0; i < n; i++)
            {
                double w = sum != 0 ? k[i] / sum : k[i];
                // Round half away from zero into fixed point, as PIL does.
                weights[o * size + i] = (int)(w < 0 ? -0.5 + w * (1 << PrecisionBits) : 0.5 + w * (1 << PrecisionBits));
            }
            start[o] = lo;
            count[o] = Math.Max(n, 0);
        }
        return new Kernel { Start = start, Count = count, Weights = weights, Size = size };
    }

    static double Filter(Interpolation filter, double x)
    {
        x = Math.Abs(x);
        if (filter == Interpolation.Bilinear) return x < 1 ? 1 - x : 0;
        const double a = -0.5; // Keys' cubic with a = −0.5, PIL's (and torchvision's antialiased) choice
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    public static RgbImage Resize(RgbImage src, int width, int height, Interpolation filter, bool antialias) =>
        ResizeWindow(src, width, height, filter, antialias, 0, 0, width, height);

    /// <summary>
    /// The window [left, left + cropWidth) × [top, top + cropHeight) of the <paramref name="width"/>×<paramref name="height"/>
    /// resize, computing only those pixels. Each output pixel depends only on its own weights, so this equals resizing fully
    /// and cropping, bit for bit — what a resize followed by a center crop needs.
    /// </summary>
    public static RgbImage ResizeWindow(RgbImage src, int width, int height, Interpolation filter, bool antialias,
        int left, int top, int cropWidth, int cropHeight)
    {
        if (left < 0 || top < 0 || cropWidth <= 0 || cropHeight <= 0 || left + cropWidth > width || top + cropHeight > height)
            throw new ArgumentOutOfRangeException(nameof(left), "the window must lie inside the resized image");
        if (filter == Interpolation.Nearest) return Nearest(src, width, height, left, top, cropWidth, cropHeight);

        bool needH = width != src.Width, needV = height != src.Height;
        var horizontal = needH ? BuildKernel(src.Width, width, filter, antialias) : null;
        var vertical = needV ? BuildKernel(src.Height, height, filter, antialias) : null;

        // Source rows the vertical pass will read (or, without one, the rows of the window itself).
        int first = vertical is null ? top : vertical.Start[top];
        int last = vertical is null ? top + cropHeight : vertical.Start[top + cropHeight - 1] + vertical.Count[top + cropHeight - 1];

        // Pass 1, horizontal, rounded to 8 bits like PIL; an unchanged width only selects columns.
        var temp = new RgbImage(cropWidth, last - first);
        if (horizontal is not null) HorizontalPass(src, first, temp, horizontal, left);
        else
            for (int y = 0; y < temp.Height; y++)
                src.Pixels.AsSpan(((first + y) * src.Width + left) * 3, cropWidth * 3).CopyTo(temp.Pixels.AsSpan(y * cropWidth * 3));
        if (vertical is null) return temp;

        var result = new RgbImage(cropWidth, cropHeight);
        VerticalPass(temp, first, result, vertical, top);
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static byte Clip8(int v)
    {
        v >>= PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /// <summary>Output columns firstColumn.. of the horizontal resize, for source rows firstRow.., into dst.</summary>
    static void HorizontalPass(RgbImage src, int firstRow, RgbImage dst, Kernel k, int firstColumn)
    {
        if (Avx512F.IsSupported) HorizontalPass512(src, firstRow, dst, k, firstColumn);
        else HorizontalPassScalar(src, firstRow, dst, k, firstColumn);
    }

    /// <summary>The horizontal pass one output pixel at a time with every tap's three channels in one vector: five taps (15 bytes
    /// of a 16-byte load, widened to 16 int32 lanes) per multiply by the tap weights spread over their channels, then the lanes
    /// of each channel summed. The same integer products and sums as <see cref="HorizontalPassScalar"/> (integer addition in any
    /// order), so the same bytes.</summary>
    internal static unsafe void HorizontalPass512(RgbImage src, int firstRow, RgbImage dst, Kernel k, int firstColumn)
    {
        int inStride = src.Width * 3, outWidth = dst.Width;
        // per output pixel, its taps' weights in 16-lane chunks: lane 3t + c holds the weight of tap 5·chunk + t (0 past the last tap)
        int maxChunks = 0;
        for (int x = 0; x < outWidth; x++) maxChunks = Math.Max(maxChunks, (k.Count[firstColumn + x] + 4) / 5);
        var spread = new int[Math.Max(1, outWidth * maxChunks * 16)];
        for (int x = 0; x < outWidth; x++)
        {
            int n = k.Count[firstColumn + x];
            for (int t = 0; t < n; t++)
            {
                int w = k.Weights[(firstColumn + x) * k.Size + t];
                int at = (x * maxChunks + t / 5) * 16 + (t % 5) * 3;
                spread[at] = spread[at + 1] = spread[at + 2] = w;
            }
        }
        // lane i ← lane i + 3, i + 6, i + 12 (indices past the end read lanes the sums never use)
        var by3 = Vector512.Create(3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15, 15, 15);
        var by6 = Vector512.Create(6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15, 15, 15, 15, 15, 15);
        var by12 = Vector512.Create(12, 13, 14, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15);
        var round = Vector512.Create(Rounding);
        var max = Vector512.Create(255);
        long srcLength = src.Pixels.Length;
        fixed (byte* s0 = src.Pixels) fixed (byte* d0 = dst.Pixels) fixed (int* w0 = spread) fixed (int* starts = k.Start) fixed (int* counts = k.Count)
        {
            for (int y = 0; y < dst.Height; y++)
            {
                long rowStart = (long)(firstRow + y) * inStride;
                byte* row = s0 + rowStart;
                byte* o = d0 + (long)y * outWidth * 3;
                for (int x = 0; x < outWidth; x++, o += 3)
                {
                    int start = starts[firstColumn + x], chunks = (counts[firstColumn + x] + 4) / 5;
                    // the last chunk's 16-byte load may reach 12 bytes past the taps: past the image only at the end of its last row
                    if (rowStart + 3L * (start + 5 * (chunks - 1)) + 16 > srcLength)
                    {
                        ScalarPixel(row, start, counts[firstColumn + x], k.Weights, (firstColumn + x) * k.Size, o);
                        continue;
                    }
                    byte* p = row + 3 * start;
                    int* w = w0 + x * maxChunks * 16;
                    var acc = Avx512F.MultiplyLow(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p)), Avx512F.LoadVector512(w));
                    for (int c = 1; c < chunks; c++)
                        acc += Avx512F.MultiplyLow(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(p + 15 * c)), Avx512F.LoadVector512(w + 16 * c));
                    var sum = acc + Avx512F.PermuteVar16x32(acc, by3);
                    sum = sum + Avx512F.PermuteVar16x32(sum, by6) + Avx512F.PermuteVar16x32(acc, by12);
                    var v = Vector512.Min(Vector512.Max(Vector512.ShiftRightArithmetic(sum + round, PrecisionBits), Vector512<int>.Zero), max);
                    o[0] = (byte)v.GetElement(0);
                    o[1] = (byte)v.GetElement(1);
                    o[2] = (byte)v.GetElement(2);
                }
            }
        }
    }

    static unsafe void ScalarPixel(byte* row, int start, int n, int[] weights, int offset, byte* o)
    {
        int r = Rounding, g = Rounding, b = Rounding;
        for (int i = 0; i < n; i++)
        {
            int wi = weights[offset + i];
            byte* p = row + 3 * (start + i);
            r += p[0] * wi;
            g += p[1] * wi;
            b += p[2] * wi;
        }
        o[0] = Clip8(r);
        o[1] = Clip8(g);
        o[2] = Clip8(b);
    }

    /// <summary>The reference horizontal pass, one multiply-add per tap and channel (PIL's loop): the fallback, and what the
    /// vector pass is tested against.</summary>
    internal static void HorizontalPassScalar(RgbImage src, int firstRow, RgbImage dst, Kernel k, int firstColumn)
    {
        int inStride = src.Width * 3, outWidth = dst.Width;
        for (int y = 0; y < dst.Height; y++)
        {
            var srcRow = src.Pixels.AsSpan((firstRow + y) * inStride, inStride);
            var dstRow = dst.Pixels.AsSpan(y * outWidth * 3, outWidth * 3);
            ref byte s0 = ref MemoryMarshal.GetReference(srcRow);
            for (int x = 0; x < outWidth; x++)
            {
                int n = k.Count[firstColumn + x];
                var w = k.Weights.AsSpan((firstColumn + x) * k.Size, n);
                // Bounds were validated when the kernel was built: Start + Count <= input width.
                ref byte p = ref Unsafe.Add(ref s0, k.Start[firstColumn + x] * 3);
                int r = Rounding, g = Rounding, b = Rounding;
                for (int i = 0; i < w.Length; i++)
                {
                    int wi = w[i];
                    r += Unsafe.Add(ref p, 3 * i) * wi;
                    g += Unsafe.Add(ref p, 3 * i + 1) * wi;
                    b += Unsafe.Add(ref p, 3 * i + 2) * wi;
                }
                dstRow[3 * x] = Clip8(r);
                dstRow[3 * x + 1] = Clip8(g);
                dstRow[3 * x + 2] = Clip8(b);
            }
        }
    }

    /// <summary>Output rows firstOutputRow.. of the vertical resize; src holds source rows from rowOffset on.</summary>
    static void VerticalPass(RgbImage src, int rowOffset, RgbImage dst, Kernel k, int firstOutputRow)
    {
        int stride = src.Width * 3;
        var srcPixels = src.Pixels;
        for (int y = 0; y < dst.Height; y++)
        {
            int first = k.Start[firstOutputRow + y] - rowOffset, n = k.Count[firstOutputRow + y];
            var w = k.Weights.AsSpan((firstOutputRow + y) * k.Size, n);
            var dstRow = dst.Pixels.AsSpan(y * stride, stride);
            if (first < 0 || (first + n) * stride > srcPixels.Length) throw new InvalidOperationException("resize kernel out of range");
            ref byte s0 = ref srcPixels[first * stride];
            int x = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                // 32 bytes per step: widen to four int32 vectors, accumulate every tap, shift, clamp, narrow back.
                var round = Vector256.Create(Rounding);
                var zero = Vector256<int>.Zero;
                var max = Vector256.Create(255);
                for (; x + 32 <= stride; x += 32)
                {
                    Vector256<int> a0 = round, a1 = round, a2 = round, a3 = round;
                    for (int i = 0; i < w.Length; i++)
                    {
                        var bytes = Vector256.LoadUnsafe(ref s0, (nuint)(i * stride + x));
                        var (lo16, hi16) = Vector256.Widen(bytes);
                        var (i0, i1) = Vector256.Widen(lo16);
                        var (i2, i3) = Vector256.Widen(hi16);
                        var wi = Vector256.Create(w[i]);
                        a0 += i0.AsInt32() * wi;
                        a1 += i1.AsInt32() * wi;
                        a2 += i2.AsInt32() * wi;
                        a3 += i3.AsInt32() * wi;
                    }
                    a0 = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(a0, PrecisionBits), zero), max);
                    a1 = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(a1, PrecisionBits), zero), max);
                    a2 = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(a2, PrecisionBits), zero), max);
                    a3 = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(a3, PrecisionBits), zero), max);
                    var packed = Vector256.Narrow(Vector256.Narrow(a0.AsUInt32(), a1.AsUInt32()), Vector256.Narrow(a2.AsUInt32(), a3.AsUInt32()));
                    packed.CopyTo(dstRow[x..]);
                }
            }
            for (; x < stride; x++)
            {
                int acc = Rounding;
                for (int i = 0; i < w.Length; i++) acc += Unsafe.Add(ref s0, i * stride + x) * w[i];
                dstRow[x] = Clip8(acc);
            }
        }
    }

    /// <summary>
    /// PIL's NEAREST resize: an affine scale where output pixel x reads input floor((x + ½)·in/out), with the
    /// coordinate accumulated step by step exactly as PIL does (so ties land on the same side).
    /// </summary>
    static RgbImage Nearest(RgbImage src, int width, int height, int left, int top, int cropWidth, int cropHeight)
    {
        var xs = NearestIndices(src.Width, width);
        var ys = NearestIndices(src.Height, height);
        var dst = new RgbImage(cropWidth, cropHeight);
        var s = src.Pixels;
        var d = dst.Pixels;
        for (int y = 0; y < cropHeight; y++)
        {
            int srcRow = ys[top + y] * src.Width * 3, o = y * cropWidth * 3;
            for (int x = 0; x < cropWidth; x++, o += 3)
            {
                int p = srcRow + xs[left + x] * 3;
                d[o] = s[p];
                d[o + 1] = s[p + 1];
                d[o + 2] = s[p + 2];
            }
        }
        return dst;
    }

    static int[] NearestIndices(int inSize, int outSize)
    {
        var map = new int[outSize];
        double step = (double)inSize / outSize, pos = step * 0.5;
        for (int i = 0; i < outSize; i++, pos += step) map[i] = Math.Clamp((int)pos, 0, inSize - 1);
        return map;
    }
}
