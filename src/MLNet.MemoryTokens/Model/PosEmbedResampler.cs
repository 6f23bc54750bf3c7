namespace MLNet.MemoryTokens.Model;

/// <summary>Resamples a learned absolute position embedding to another patch grid, as timm's <c>resample_abs_pos_embed</c>:
/// prefix tokens split off, the grid resized bicubic with antialias (PyTorch's <c>interpolate(..., antialias=True)</c>), prefix put back.</summary>
public static class PosEmbedResampler
{
    /// <param name="posEmbed">[1, prefix + oldH·oldW, D]</param>
    /// <returns>[1, prefix + newH·newW, D]</returns>
    public static Tensor Resample(Tensor posEmbed, int prefixTokens, (int H, int W) oldGrid, (int H, int W) newGrid)
    {
        if (posEmbed.Rank != 3 || posEmbed.Shape[0] != 1) throw new ArgumentException($"pos_embed must be [1, N, D], got {posEmbed.ShapeString}.");
        int d = posEmbed.Shape[2];
        if (posEmbed.Shape[1] != prefixTokens + oldGrid.H * oldGrid.W)
            throw new ArgumentException($"pos_embed has {posEmbed.Shape[1]} tokens, expected {prefixTokens} + {oldGrid.H}×{oldGrid.W}.");
        if (oldGrid == newGrid) return posEmbed.Clone();
        var result = new Tensor([1, prefixTokens + newGrid.H * newGrid.W, d]);
        var src = posEmbed.Data; var dst = result.Data;
        Array.Copy(src, dst, prefixTokens * d);
        // Separable: along W then along H, in float64 like the weights (one rounding at the end per pass).
        var wx = Weights(oldGrid.W, newGrid.W);
        var wy = Weights(oldGrid.H, newGrid.H);
        var tmp = new double[oldGrid.H * newGrid.W * d];   // [oldH, newW, D]
        for (int y = 0; y < oldGrid.H; y++)
            for (int x = 0; x < newGrid.W; x++)
            {
                var (start, w) = wx[x];
                for (int j = 0; j < w.Length; j++)
                {
                    int srcOff = (prefixTokens + y * oldGrid.W + start + j) * d;
                    int dstOff = (y * newGrid.W + x) * d;
                    for (int c = 0; c < d; c++) tmp[dstOff + c] += w[j] * src[srcOff + c];
                }
            }
        for (int y = 0; y < newGrid.H; y++)
        {
            var (start, w) = wy[y];
            for (int x = 0; x < newGrid.W; x++)
            {
                int dstOff = (prefixTokens + y * newGrid.W + x) * d;
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < w.Length; j++) acc += w[j] * tmp[((start + j) * newGrid.W + x) * d + c];
                    dst[dstOff + c] = (float)acc;
                }
            }
        }
        return result;
    }

    // Bicubic (a = -0.5) antialiased weights, align_corners = False: the filter's support widens by the downscale factor.
    static (int Start, double[] W)[] Weights(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double support = 2.0 * Math.Max(scale, 1.0);
        double invScale = scale >= 1.0 ? 1.0 / scale : 1.0;
        var table = new (int, double[])[outSize];
        for (int i = 0; i < outSize; i++)
        {
            double center = scale * (i + 0.5);
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize);
            var w = new double[xmax - xmin];
            double total = 0;
            for (int j = 0; j < w.Length; j++) total += w[j] = Cubic((j + xmin - center + 0.5) * invScale);
            if (total != 0) for (int j = 0; j < w.Length; j++) w[j] /= total;
            table[i] = (xmin, w);
        }
        return table;
    }

    static double Cubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }
}
