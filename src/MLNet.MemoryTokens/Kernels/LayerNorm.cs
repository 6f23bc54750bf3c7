using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

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
                float* x = input + (long)r * channels, o = output + (long)r * channels;
                if (Vector512.IsHardwareAccelerated && channels % 16 == 0) { RowForward512(o, x, weight, bias, channels, eps, out float m, out float s); if (mean != null) { mean[r] = m; rstd[r] = s; } continue; }
                var xs = new ReadOnlySpan<float>(x, channels);
                var os = new Span<float>(o, channels);
                float mu = TensorPrimitives.Sum(xs) / channels;
                TensorPrimitives.Subtract(xs, mu, os);                // o = x - mean (two-pass variance: no cancellation)
                float v = TensorPrimitives.SumOfSquares(os) / channels;
                float sd = 1f / MathF.Sqrt(v + eps);
                TensorPrimitives.Multiply(os, sd, os);                // o = xhat
                TensorPrimitives.FusedMultiplyAdd(os, w, b, os);     // o = xhat * w + b
                if (mean != null) { mean[r] = mu; rstd[r] = sd; }
            }
        });
    }

    /// <summary>One row in three passes over L1-resident data (sum; centred sum of squares; normalise, scale, shift): the same
    /// arithmetic as the span path, without five library calls per 192-float row.</summary>
    static void RowForward512(float* o, float* x, float* w, float* b, int c, float eps, out float mean, out float rstd)
    {
        var acc = Vector512<float>.Zero;
        for (int i = 0; i < c; i += 16) acc += Vector512.Load(x + i);
        float mu = Vector512.Sum(acc) / c;
        var vm = Vector512.Create(mu);
        var sq = Vector512<float>.Zero;
        for (int i = 0; i < c; i += 16) { var d = Vector512.Load(x + i) - vm; sq = Vector512.FusedMultiplyAdd(d, d, sq); }
        float s = 1f / MathF.Sqrt(Vector512.Sum(sq) / c + eps);
        var vs = Vector512.Create(s);
        for (int i = 0; i < c; i += 16)
            Vector512.FusedMultiplyAdd((Vector512.Load(x + i) - vm) * vs, Vector512.Load(w + i), Vector512.Load(b + i)).Store(o + i);
        mean = mu; rstd = s;
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
        // raw pointers below: the weight and the weight gradients must cover every channel
        if (weight.Length < channels || (!dWeight.IsEmpty && dWeight.Length < channels) || (!dBias.IsEmpty && dBias.Length < channels))
            throw new ArgumentException($"LayerNorm weight and its gradients need {channels} elements.");
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
                // dxhat = dy * w;  dx += (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) * rstd
                float* dx = dInput + (long)r * channels;
                if (Vector512.IsHardwareAccelerated && channels % 16 == 0)
                {
                    float* px = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref xhat.GetPinnableReference());
                    float* pdy = dOutput + (long)r * channels;
                    var s1 = Vector512<float>.Zero; var s2 = Vector512<float>.Zero;
                    for (int c = 0; c < channels; c += 16)
                    {
                        var g = Vector512.Load(pdy + c) * Vector512.Load(weight + c);
                        s1 += g; s2 = Vector512.FusedMultiplyAdd(g, Vector512.Load(px + c), s2);
                    }
                    var m1 = Vector512.Create(Vector512.Sum(s1) / channels); var m2 = Vector512.Create(Vector512.Sum(s2) / channels); var vs = Vector512.Create(s);
                    for (int c = 0; c < channels; c += 16)
                    {
                        var g = Vector512.Load(pdy + c) * Vector512.Load(weight + c);
                        var d = (g - m1 - Vector512.Load(px + c) * m2) * vs;
                        (Vector512.Load(dx + c) + d).Store(dx + c);
                    }
                    continue;
                }
                TensorPrimitives.Multiply(dy, w, wdy);
                float meanDxhat = TensorPrimitives.Sum(wdy) / channels;
                float meanDxhatXhat = TensorPrimitives.Dot(wdy, xhat) / channels;
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
