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
            var vmax = Vector512.Create(float.NegativeInfinity);
            for (; i <= n - 16; i += 16) vmax = Vector512.Max(vmax, Vector512.LoadUnsafe(ref xr, (nuint)i));
            max = MaxAcross(vmax);
        }
        for (; i < n; i++) max = MathF.Max(max, Unsafe.Add(ref xr, i));
        float sum = 0f;
        i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var vs = Vector512.Create(scale); var vm = Vector512.Create(max); var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var e = Vector512.Exp((Vector512.LoadUnsafe(ref xr, (nuint)i) - vm) * vs);
                e.StoreUnsafe(ref pr, (nuint)i);
                acc += e;
            }
            sum = Vector512.Sum(acc);
        }
        for (; i < n; i++) { float e = MathF.Exp((Unsafe.Add(ref xr, i) - max) * scale); Unsafe.Add(ref pr, i) = e; sum += e; }
        float inv = 1f / sum;
        i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (var vi = Vector512.Create(inv); i <= n - 16; i += 16) (Vector512.LoadUnsafe(ref pr, (nuint)i) * vi).StoreUnsafe(ref pr, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref pr, i) *= inv;
    }

    static float MaxAcross(Vector512<float> v)
    {
        float m = v[0];
        for (int k = 1; k < 16; k++) m = MathF.Max(m, v[k]);
        return m;
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
