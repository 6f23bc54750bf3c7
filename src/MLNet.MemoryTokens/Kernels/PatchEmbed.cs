namespace MLNet.MemoryTokens.Kernels;

/// <summary>Patch embedding as a GEMM: im2col turns non-overlapping p×p patches into rows that a Linear maps to tokens.</summary>
public static class PatchEmbed
{
    /// <summary>cols[b·P + py·Gw + px, c·p·p + ky·p + kx] = images[b, c, py·p + ky, px·p + kx] — the column order of a conv weight [D, C, p, p] flattened.</summary>
    /// <param name="cols">[B·P, C·p·p], P = (H/p)·(W/p)</param>
    /// <param name="images">[B, C, H, W] planar</param>
    public static void Im2Col(Span<float> cols, ReadOnlySpan<float> images, int batch, int channels, int height, int width, int patch)
    {
        if (height % patch != 0 || width % patch != 0) throw new ArgumentException($"Image {height}×{width} is not a multiple of the patch size {patch}.");
        int gh = height / patch, gw = width / patch, rowLen = channels * patch * patch;
        long need = (long)batch * gh * gw * rowLen;
        if (cols.Length < need || images.Length < (long)batch * channels * height * width) throw new ArgumentException("Im2Col buffers too small.");
        for (int b = 0; b < batch; b++)
            for (int py = 0; py < gh; py++)
                for (int px = 0; px < gw; px++)
                {
                    var dst = cols.Slice(((b * gh + py) * gw + px) * rowLen, rowLen);
                    int o = 0;
                    for (int c = 0; c < channels; c++)
                        for (int ky = 0; ky < patch; ky++)
                        {
                            images.Slice(((b * channels + c) * height + py * patch + ky) * width + px * patch, patch).CopyTo(dst.Slice(o, patch));
                            o += patch;
                        }
                }
    }
}
