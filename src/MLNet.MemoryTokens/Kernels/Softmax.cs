using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>Row-wise softmax of scaled logits, forward and backward (rows R, columns C).</summary>
public static unsafe class Softmax
{
    /// <summary>probs[r,:] = softmax(scale · logits[r,:]), max-subtracted for stability. probs may alias logits.</summary>
    public static void Forward(Span<float> probs, ReadOnlySpan<float> logits, int rows, int cols, float scale = 1f)
    {
        if (probs.Length < (long)rows * cols || logits.Length < (long)rows * cols) throw new ArgumentException($"Softmax needs [{rows}, {cols}].");
        for (int r = 0; r < rows; r++)
            RowForward(probs.Slice(r * cols, cols), logits.Slice(r * cols, cols), scale);
    }

    /// <summary>One row: max, exp((x − max)·scale) with the sum in the same pass, then 1/sum. Fused: attention calls this for
    /// every score row, where separate library calls per row cost more than the arithmetic.</summary>
    internal static void RowForward(Span<float> p, ReadOnlySpan<float> x, float scale)
    {
        int n = x.Length;
        if (p.Length < n) throw new ArgumentException("Softmax output row is shorter than its input.");
        if (n == 0) return;
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float pr = ref MemoryMarshal.GetReference(p);
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            // the last partial vector goes through the vector path too, padded with −∞ (exp → 0): attention's rows of 197 or
            // 202 scores would otherwise spend as long on a scalar tail as on the rest of the row
            int full = n & ~15, tail = n - full;
            Span<float> pad = stackalloc float[16];
            var vmax = Vector512.Create(float.NegativeInfinity);
            for (; i < full; i += 16) vmax = Vector512.Max(vmax, Vector512.LoadUnsafe(ref xr, (nuint)i));
            Vector512<float> vt = default;
            if (tail > 0)
            {
                pad.Fill(float.NegativeInfinity);
                x.Slice(full, tail).CopyTo(pad);
                vt = Vector512.Create((ReadOnlySpan<float>)pad);
                vmax = Vector512.Max(vmax, vt);
            }
            max = MaxAcross(vmax);
            var vs = Vector512.Create(scale); var vm = Vector512.Create(max); var acc = Vector512<float>.Zero;
            for (i = 0; i < full; i += 16)
            {
                var e = Exponential.Exp((Vector512.LoadUnsafe(ref xr, (nuint)i) - vm) * vs);
                e.StoreUnsafe(ref pr, (nuint)i);
                acc += e;
            }
            if (tail > 0)
            {
                var e = Exponential.Exp((vt - vm) * vs);
                acc += e;
                e.CopyTo(pad);
                pad[..tail].CopyTo(p.Slice(full, tail));
            }
            var vi = Vector512.Create(1f / Vector512.Sum(acc));
            for (i = 0; i < full; i += 16) (Vector512.LoadUnsafe(ref pr, (nuint)i) * vi).StoreUnsafe(ref pr, (nuint)i);
            float inv = vi.ToScalar();
            for (; i < n; i++) Unsafe.Add(ref pr, i) *= inv;
            return;
        }
        for (; i < n; i++) max = MathF.Max(max, Unsafe.Add(ref xr, i));
        float sum = 0f;
        for (i = 0; i < n; i++) { float e = Exponential.Exp((Unsafe.Add(ref xr, i) - max) * scale); Unsafe.Add(ref pr, i) = e; sum += e; }
        float invSum = 1f / sum;
        for (i = 0; i < n; i++) Unsafe.Add(ref pr, i) *= invSum;
    }

    static float MaxAcross(Vector512<float> v)
    {
        var q = Vector256.Max(v.GetLower(), v.GetUpper());
        var h = Vector128.Max(q.GetLower(), q.GetUpper());
        return MathF.Max(MathF.Max(h[0], h[1]), MathF.Max(h[2], h[3]));
    }

    /// <summary>dlogits = scale · p ⊙ (dp − Σ dp⊙p) — written, not accumulated (it is a fresh intermediate in attention).</summary>
    public static void Backward(Span<float> dLogits, ReadOnlySpan<float> probs, ReadOnlySpan<float> dProbs, int rows, int cols, float scale = 1f)
    {
        if (dLogits.Length < (long)rows * cols || probs.Length < (long)rows * cols || dProbs.Length < (long)rows * cols) throw new ArgumentException($"Softmax backward needs [{rows}, {cols}].");
        for (int r = 0; r < rows; r++)
            RowBackward(dLogits.Slice(r * cols, cols), probs.Slice(r * cols, cols), dProbs.Slice(r * cols, cols), scale);
    }

    /// <summary>One row: dx = scale · p ⊙ (dp − p·dp), the dot and the update in two fused passes; dx may alias dp.</summary>
    internal static void RowBackward(Span<float> dx, ReadOnlySpan<float> p, ReadOnlySpan<float> dp, float scale)
    {
        int n = p.Length;
        if (dx.Length < n || dp.Length < n) throw new ArgumentException("Softmax backward rows differ in length.");   // unchecked refs below
        ref float pr = ref MemoryMarshal.GetReference(p);
        ref float dpr = ref MemoryMarshal.GetReference(dp);
        ref float dxr = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        float dot = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pr, (nuint)i), Vector512.LoadUnsafe(ref dpr, (nuint)i), acc);
            dot = Vector512.Sum(acc);
        }
        for (; i < n; i++) dot += Unsafe.Add(ref pr, i) * Unsafe.Add(ref dpr, i);
        i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (var vd = Vector512.Create(dot); i <= n - 16; i += 16)
            {
                var pv = Vector512.LoadUnsafe(ref pr, (nuint)i);
                ((Vector512.LoadUnsafe(ref dpr, (nuint)i) - vd) * pv * scale).StoreUnsafe(ref dxr, (nuint)i);
            }
        for (; i < n; i++) Unsafe.Add(ref dxr, i) = (Unsafe.Add(ref dpr, i) - dot) * Unsafe.Add(ref pr, i) * scale;
    }
}
