using System.Numerics.Tensors;

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

    internal static void RowForward(Span<float> p, ReadOnlySpan<float> x, float scale)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, p);
        if (scale != 1f) TensorPrimitives.Multiply(p, scale, p);   // scale > 0, so the max row entry stays the max
        TensorPrimitives.Exp(p, p);
        TensorPrimitives.Multiply(p, 1f / TensorPrimitives.Sum(p), p);
    }

    /// <summary>dlogits = scale · p ⊙ (dp − Σ dp⊙p) — written, not accumulated (it is a fresh intermediate in attention).</summary>
    public static void Backward(Span<float> dLogits, ReadOnlySpan<float> probs, ReadOnlySpan<float> dProbs, int rows, int cols, float scale = 1f)
    {
        if (dLogits.Length < (long)rows * cols || probs.Length < (long)rows * cols || dProbs.Length < (long)rows * cols) throw new ArgumentException($"Softmax backward needs [{rows}, {cols}].");
        for (int r = 0; r < rows; r++)
            RowBackward(dLogits.Slice(r * cols, cols), probs.Slice(r * cols, cols), dProbs.Slice(r * cols, cols), scale);
    }

    internal static void RowBackward(Span<float> dx, ReadOnlySpan<float> p, ReadOnlySpan<float> dp, float scale)
    {
        float dot = TensorPrimitives.Dot(dp, p);
        TensorPrimitives.Subtract(dp, dot, dx);        // dx may alias dp: read-before-write per element
        TensorPrimitives.Multiply(dx, p, dx);
        if (scale != 1f) TensorPrimitives.Multiply(dx, scale, dx);
    }
}
