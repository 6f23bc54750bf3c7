using System.Numerics.Tensors;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>A fully connected layer y = x·Wᵀ + b (PyTorch layout: W [N_out, K_in]), forward and backward.</summary>
public static unsafe class Linear
{
    /// <summary>out[R, N] = inp[R, K] · Wᵀ + bias, or out += ... when <paramref name="accumulate"/> (the residual add fused).</summary>
    /// <param name="weight">W packed once by <see cref="Gemm.Pack"/> with transB (frozen weights), K = in features, N = out features.</param>
    /// <param name="bias">[N] or empty.</param>
    public static void Forward(Span<float> output, ReadOnlySpan<float> input, Gemm.PackedB weight, ReadOnlySpan<float> bias, int rows, bool accumulate = false)
    {
        int n = weight.N, k = weight.K;
        if (input.Length < (long)rows * k || output.Length < (long)rows * n) throw new ArgumentException($"Linear expects input [{rows}, {k}] and output [{rows}, {n}].");
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"Linear bias has {bias.Length} elements, expected {n}.");
        fixed (float* po = output) fixed (float* pi = input) fixed (float* pb = bias)
            Gemm.Multiply(false, rows, pi, k, weight, po, n, accumulate ? 1f : 0f, parallel: true, bias.IsEmpty ? null : pb);
    }

    /// <summary>out = gelu(inp · Wᵀ + bias), with gelu' of the pre-activation kept in <paramref name="derivative"/> when given
    /// (what backward multiplies by): the activation applied to each tile as the GEMM finishes it, not in a second pass over
    /// [R, N], and the one erfc per element shared by both.</summary>
    public static void ForwardGelu(Span<float> derivative, Span<float> output, ReadOnlySpan<float> input, Gemm.PackedB weight, ReadOnlySpan<float> bias, int rows)
    {
        int n = weight.N, k = weight.K;
        if (input.Length < (long)rows * k || output.Length < (long)rows * n || (!derivative.IsEmpty && derivative.Length < (long)rows * n))
            throw new ArgumentException($"Linear+GELU expects input [{rows}, {k}] and outputs [{rows}, {n}].");
        if (!Gemm.SupportsEpilogue(weight))
        {
            var pre = output[..(rows * n)];
            Forward(pre, input, weight, bias, rows);
            if (!derivative.IsEmpty) Gelu.Derivative(derivative[..(rows * n)], pre);
            Gelu.Forward(pre, pre);
            return;
        }
        fixed (float* po = output) fixed (float* pd = derivative) fixed (float* pi = input) fixed (float* pb = bias)
            Gemm.Multiply(false, rows, pi, k, weight, po, n, 0f, parallel: true, bias.IsEmpty ? null : pb, Epilogue.Gelu, derivative.IsEmpty ? null : pd);
    }

    /// <summary>dHidden = (dout · W) ⊙ geluDerivative: the input gradient of FC2 and GELU's backward in one GEMM
    /// (W packed with transB = false: K = out features, N = in features; geluDerivative as <see cref="ForwardGelu"/> kept it).</summary>
    public static void BackwardInputGelu(Span<float> dHidden, ReadOnlySpan<float> dOutput, Gemm.PackedB weightForBackward, ReadOnlySpan<float> geluDerivative, int rows)
    {
        int n = weightForBackward.N;
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows));
        if (geluDerivative.Length < (long)rows * n) throw new ArgumentException($"The GELU derivative has {geluDerivative.Length} elements; [{rows}, {n}] needed.");
        // the fused path below hands raw pointers to the GEMM: every span is checked first
        if (dHidden.Length < (long)rows * n || dOutput.Length < (long)rows * weightForBackward.K)
            throw new ArgumentException($"GELU backward expects dOutput [{rows}, {weightForBackward.K}] and dHidden [{rows}, {n}].");
        if (!Gemm.SupportsEpilogue(weightForBackward))
        {
            BackwardInput(dHidden, dOutput, weightForBackward, rows, accumulate: false);
            TensorPrimitives.Multiply(dHidden[..(rows * n)], geluDerivative[..(rows * n)], dHidden[..(rows * n)]);
            return;
        }
        fixed (float* pd = dHidden) fixed (float* po = dOutput) fixed (float* pa = geluDerivative)
            Gemm.Multiply(false, rows, po, weightForBackward.K, weightForBackward, pd, n, 0f, parallel: true, null, Epilogue.MultiplyByAux, pa);
    }

    /// <summary>Unpacked form (weights that change every step): out = inp · Wᵀ + bias (+ out when accumulating).</summary>
    /// <param name="weight">[N, K]</param>
    public static void Forward(Span<float> output, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int rows, int inFeatures, int outFeatures, bool accumulate = false)
    {
        if (input.Length < (long)rows * inFeatures || output.Length < (long)rows * outFeatures || weight.Length < (long)inFeatures * outFeatures)
            throw new ArgumentException($"Linear expects input [{rows}, {inFeatures}], weight [{outFeatures}, {inFeatures}], output [{rows}, {outFeatures}].");
        if (!bias.IsEmpty && bias.Length != outFeatures) throw new ArgumentException($"Linear bias has {bias.Length} elements, expected {outFeatures}.");
        if (rows == 0) return;
        fixed (float* po = output) fixed (float* pi = input) fixed (float* pw = weight) fixed (float* pb = bias)
            Gemm.Multiply(false, true, rows, outFeatures, inFeatures, pi, inFeatures, pw, inFeatures, po, outFeatures, accumulate ? 1f : 0f, parallel: true, bias: bias.IsEmpty ? null : pb);
    }

    /// <summary>Backward: dinp += dout·W, dW += doutᵀ·inp, db += Σ_r dout (each skipped when its span is empty).</summary>
    /// <param name="dInput">[R, K]</param><param name="dWeight">[N, K]</param><param name="dBias">[N]</param>
    /// <param name="dOutput">[R, N]</param><param name="input">[R, K]</param><param name="weight">[N, K]</param>
    public static void Backward(Span<float> dInput, Span<float> dWeight, Span<float> dBias, ReadOnlySpan<float> dOutput,
        ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int rows, int inFeatures, int outFeatures)
    {
        int k = inFeatures, n = outFeatures;
        if (rows == 0) return;
        // forward: y = x Wᵀ  →  dx += dy W    [R, K]
        if (!dInput.IsEmpty) Gemm.Multiply(false, false, rows, k, n, dOutput, n, weight, k, dInput, k, 1f);
        // forward: y = x Wᵀ  →  dW += dyᵀ x   [N, K]
        if (!dWeight.IsEmpty) Gemm.Multiply(true, false, n, k, rows, dOutput, n, input, k, dWeight, k, 1f);
        // forward: y += b    →  db += Σ_r dy
        if (!dBias.IsEmpty) ColumnSums(dBias, dOutput, rows, n);
    }

    /// <summary>dinp += dout · W (or dinp = dout · W when not <paramref name="accumulate"/>) with W packed once by <see cref="Gemm.Pack"/>
    /// (transB = false, K = out features, N = in features): the frozen-backbone path.</summary>
    public static void BackwardInput(Span<float> dInput, ReadOnlySpan<float> dOutput, Gemm.PackedB weightForBackward, int rows, bool accumulate = true)
    {
        if (rows == 0) return;
        Gemm.Multiply(false, rows, dOutput, weightForBackward.K, weightForBackward, dInput, weightForBackward.N, accumulate ? 1f : 0f);
    }

    /// <summary>sums[c] += Σ_r m[r, c].</summary>
    public static void ColumnSums(Span<float> sums, ReadOnlySpan<float> m, int rows, int cols)
    {
        if (sums.Length < cols || m.Length < (long)rows * cols) throw new ArgumentException($"Column sums need [{rows}, {cols}] and {cols} sums.");
        // a bias gradient reads a whole [6,304, 768] gradient: in fixed blocks of rows, in parallel, each block's sum then added
        // in block order (the same bits whatever the thread count)
        const int Block = 256;
        int blocks = (rows + Block - 1) / Block;
        var s = sums[..cols];
        if (blocks <= 1)
        {
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(s, m.Slice(r * cols, cols), s);
            return;
        }
        var partial = System.Buffers.ArrayPool<float>.Shared.Rent(blocks * cols);
        try
        {
            fixed (float* pm = m)
            {
                float* src = pm;
                Parallelism.For(0, blocks, blk =>
                {
                    var acc = partial.AsSpan(blk * cols, cols);
                    acc.Clear();
                    for (int r = blk * Block, end = Math.Min(rows, r + Block); r < end; r++)
                        TensorPrimitives.Add(acc, new ReadOnlySpan<float>(src + (long)r * cols, cols), acc);
                });
            }
            for (int blk = 0; blk < blocks; blk++) TensorPrimitives.Add(s, partial.AsSpan(blk * cols, cols), s);
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(partial); }
    }
}
