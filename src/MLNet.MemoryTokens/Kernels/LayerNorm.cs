using System.Numerics.Tensors;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>LayerNorm over the last dimension, forward and backward side by side (rows R, channels C).</summary>
public static unsafe class LayerNorm
{
    /// <summary>out[r,:] = (inp[r,:] - mean) * rstd * weight + bias.</summary>
    /// <param name="output">[R, C]; may alias <paramref name="input"/>.</param>
    /// <param name="mean">[R] saved for backward, or empty at inference.</param>
    /// <param name="rstd">[R] 1/sqrt(var + eps) saved for backward, or empty at inference.</param>
    /// <param name="input">[R, C]</param>
    /// <param name="weight">[C]</param>
    /// <param name="bias">[C]</param>
    public static void Forward(Span<float> output, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> input,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int rows, int channels, float eps)
    {
        Check(output.Length, input.Length, rows, channels);
        if (weight.Length != channels || bias.Length != channels) throw new ArgumentException($"LayerNorm weight/bias must have {channels} elements.");
        bool save = !mean.IsEmpty;
        if (save && (mean.Length < rows || rstd.Length < rows)) throw new ArgumentException("mean/rstd need one entry per row.");
        fixed (float* po = output) fixed (float* pm = mean) fixed (float* ps = rstd) fixed (float* pi = input) fixed (float* pw = weight) fixed (float* pb = bias)
            ForwardRows(po, save ? pm : null, save ? ps : null, pi, pw, pb, rows, channels, eps);
    }

    static void ForwardRows(float* output, float* mean, float* rstd, float* input, float* weight, float* bias, int rows, int channels, float eps)
    {
        Parallelism.ForChunks(rows, 256, (start, end) =>
        {
            var w = new ReadOnlySpan<float>(weight, channels);
            var b = new ReadOnlySpan<float>(bias, channels);
            for (int r = start; r < end; r++)
            {
                var x = new ReadOnlySpan<float>(input + (long)r * channels, channels);
                var o = new Span<float>(output + (long)r * channels, channels);
                float m = TensorPrimitives.Sum(x) / channels;
                TensorPrimitives.Subtract(x, m, o);                  // o = x - mean (two-pass variance: no cancellation)
                float v = TensorPrimitives.SumOfSquares(o) / channels;
                float s = 1f / MathF.Sqrt(v + eps);
                TensorPrimitives.Multiply(o, s, o);                  // o = xhat
                TensorPrimitives.FusedMultiplyAdd(o, w, b, o);      // o = xhat * w + b
                if (mean != null) { mean[r] = m; rstd[r] = s; }
            }
        });
    }

    /// <summary>Backward of <see cref="Forward"/>: dinp += ..., dweight += ..., dbias += ... (each optional: empty span skips it).</summary>
    /// <param name="dInput">[R, C] accumulated into.</param>
    /// <param name="dWeight">[C] accumulated into, or empty (frozen weights).</param>
    /// <param name="dBias">[C] accumulated into, or empty.</param>
    /// <param name="dOutput">[R, C]</param>
    /// <param name="input">[R, C] the forward input.</param>
    public static void Backward(Span<float> dInput, Span<float> dWeight, Span<float> dBias, ReadOnlySpan<float> dOutput,
        ReadOnlySpan<float> input, ReadOnlySpan<float> weight, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, int rows, int channels)
    {
        Check(dOutput.Length, input.Length, rows, channels);
        if (!dInput.IsEmpty && dInput.Length < (long)rows * channels) throw new ArgumentException("dInput too small.");
        if (mean.Length < rows || rstd.Length < rows) throw new ArgumentException("mean/rstd need one entry per row (run Forward with them).");
        bool wantW = !dWeight.IsEmpty, wantB = !dBias.IsEmpty, wantX = !dInput.IsEmpty;
        fixed (float* pdi = dInput) fixed (float* pdw = dWeight) fixed (float* pdb = dBias) fixed (float* pdo = dOutput)
        fixed (float* pi = input) fixed (float* pw = weight) fixed (float* pm = mean) fixed (float* ps = rstd)
            BackwardRows(wantX ? pdi : null, wantW ? pdw : null, wantB ? pdb : null, pdo, pi, pw, pm, ps, rows, channels);
    }

    static void BackwardRows(float* dInput, float* dWeight, float* dBias, float* dOutput, float* input, float* weight,
        float* mean, float* rstd, int rows, int channels)
    {
        int chunks = Math.Clamp(rows / 256, 1, Parallelism.Threads * 4);
        int size = (rows + chunks - 1) / chunks;
        // Per-chunk partial sums for dweight/dbias, reduced after: no races, deterministic order.
        float[]? partial = dWeight != null || dBias != null ? new float[chunks * 2 * channels] : null;
        Parallelism.For(0, chunks, chunk =>
        {
            int start = chunk * size, end = Math.Min(rows, start + size);
            Span<float> xhat = channels <= 4096 ? stackalloc float[channels] : new float[channels];
            Span<float> wdy = channels <= 4096 ? stackalloc float[channels] : new float[channels];
            var w = new ReadOnlySpan<float>(weight, channels);
            for (int r = start; r < end; r++)
            {
                var x = new ReadOnlySpan<float>(input + (long)r * channels, channels);
                var dy = new ReadOnlySpan<float>(dOutput + (long)r * channels, channels);
                float s = rstd[r];
                TensorPrimitives.Subtract(x, mean[r], xhat);
                TensorPrimitives.Multiply(xhat, s, xhat);                 // xhat = (x - mean) * rstd
                if (partial != null)
                {
                    fixed (float* pp = partial)
                    {
                        var gw = new Span<float>(pp + (long)chunk * 2 * channels, channels);
                        var gb = new Span<float>(pp + (long)chunk * 2 * channels + channels, channels);
                        TensorPrimitives.FusedMultiplyAdd(dy, xhat, gw, gw); // dweight += dy * xhat
                        TensorPrimitives.Add(gb, dy, gb);                    // dbias += dy
                    }
                }
                if (dInput == null) continue;
                // dxhat = dy * w;  dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) * rstd
                TensorPrimitives.Multiply(dy, w, wdy);
                float meanDxhat = TensorPrimitives.Sum(wdy) / channels;
                float meanDxhatXhat = TensorPrimitives.Dot(wdy, xhat) / channels;
                var dx = new Span<float>(dInput + (long)r * channels, channels);
                for (int c = 0; c < channels; c++)
                    dx[c] += (wdy[c] - meanDxhat - xhat[c] * meanDxhatXhat) * s;
            }
        });
        if (partial == null) return;
        for (int chunk = 0; chunk < chunks; chunk++)
        {
            var gw = new ReadOnlySpan<float>(partial, chunk * 2 * channels, channels);
            var gb = new ReadOnlySpan<float>(partial, chunk * 2 * channels + channels, channels);
            if (dWeight != null) { var d = new Span<float>(dWeight, channels); TensorPrimitives.Add(d, gw, d); }
            if (dBias != null) { var d = new Span<float>(dBias, channels); TensorPrimitives.Add(d, gb, d); }
        }
    }

    static void Check(long outLen, long inLen, int rows, int channels)
    {
        if (rows < 0 || channels <= 0) throw new ArgumentOutOfRangeException(nameof(rows), $"LayerNorm rows={rows} channels={channels}.");
        long need = (long)rows * channels;
        if (outLen < need || inLen < need) throw new ArgumentException($"LayerNorm needs {need} elements ([{rows}, {channels}]).");
    }
}
