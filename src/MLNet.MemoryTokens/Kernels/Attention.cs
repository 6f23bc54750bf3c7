using System.Buffers;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>Fused multi-head scaled dot-product attention over a packed qkv buffer, forward and backward.</summary>
/// <remarks>
/// Legend: B batch, S rows per sequence in the qkv buffer, H heads, d head dim, D = H·d.
/// qkv is [B, S, 3D] in timm's layout (q | k | v, heads contiguous inside each). Queries are rows [q0, q0+Nq) of each
/// sequence and keys/values rows [k0, k0+Nk): plain self-attention is (0, N, 0, N); memory tokens append m rows that are
/// keys/values only, (0, N, 0, N+m); query tokens that only read are (N, T, 0, N). Each (batch, head) pair is one task;
/// its [Nq, Nk] score matrix lives in a per-task buffer for just that task unless probabilities are kept for backward.
/// </remarks>
public static unsafe class Attention
{
    /// <summary>Describes which rows of each sequence are queries and which are keys/values.</summary>
    public readonly record struct Layout(int Batch, int SeqLen, int Heads, int HeadDim, int QueryStart, int Queries, int KeyStart, int Keys)
    {
        public int Dim => Heads * HeadDim;
        public float Scale => 1f / MathF.Sqrt(HeadDim);
        public static Layout SelfAttention(int batch, int tokens, int heads, int headDim) => new(batch, tokens, heads, headDim, 0, tokens, 0, tokens);

        internal void Validate(long qkvLength)
        {
            if (Batch < 0 || SeqLen < 0 || Heads <= 0 || HeadDim <= 0 || Queries < 0 || Keys <= 0 || QueryStart < 0 || KeyStart < 0
                || QueryStart + Queries > SeqLen || KeyStart + Keys > SeqLen)
                throw new ArgumentException($"Invalid attention layout {this}.");
            if (qkvLength < (long)Batch * SeqLen * 3 * Dim) throw new ArgumentException($"qkv has {qkvLength} elements; layout {this} needs {(long)Batch * SeqLen * 3 * Dim}.");
        }
    }

    /// <summary>out[b, i, h·d:(h+1)·d] = softmax(q_i·Kᵀ/√d) V for every batch b and head h.</summary>
    /// <param name="output">[B, Nq, D]</param>
    /// <param name="probs">[B, H, Nq, Nk] kept for backward, or empty at inference.</param>
    /// <param name="qkv">[B, S, 3D]</param>
    public static void Forward(Span<float> output, Span<float> probs, ReadOnlySpan<float> qkv, Layout layout)
    {
        layout.Validate(qkv.Length);
        int nq = layout.Queries, nk = layout.Keys, D = layout.Dim;
        if (output.Length < (long)layout.Batch * nq * D) throw new ArgumentException("Attention output too small.");
        bool keep = !probs.IsEmpty;
        if (keep && probs.Length < (long)layout.Batch * layout.Heads * nq * nk) throw new ArgumentException("Attention probs buffer too small.");
        fixed (float* po = output) fixed (float* pp = probs) fixed (float* pq = qkv)
            ForwardAll(po, keep ? pp : null, pq, layout);
    }

    static void ForwardAll(float* output, float* probs, float* qkv, Layout l)
    {
        int nq = l.Queries, nk = l.Keys, D = l.Dim, hd = l.HeadDim, row = 3 * D;
        float scale = l.Scale;
        Parallelism.For(0, l.Batch * l.Heads, task =>
        {
            int b = task / l.Heads, h = task % l.Heads;
            float* seq = qkv + (long)b * l.SeqLen * row;
            float* q = seq + (long)l.QueryStart * row + h * hd;
            float* k = seq + (long)l.KeyStart * row + D + h * hd;
            float* v = seq + (long)l.KeyStart * row + 2 * D + h * hd;
            float* o = output + (long)b * nq * D + h * hd;
            float[]? rented = probs == null ? ArrayPool<float>.Shared.Rent(nq * nk) : null;
            try
            {
                fixed (float* scratch = rented)
                {
                    float* p = probs != null ? probs + (long)task * nq * nk : scratch;
                    // S = Q Kᵀ            [Nq, Nk]
                    Gemm.Multiply(false, true, nq, nk, hd, q, row, k, row, p, nk, 0f, parallel: false);
                    // P = softmax(S / √d)  row-wise, in place
                    for (int i = 0; i < nq; i++)
                    {
                        var pr = new Span<float>(p + (long)i * nk, nk);
                        Softmax.RowForward(pr, pr, scale);
                    }
                    // O = P V             [Nq, d] into the head's columns of out
                    Gemm.Multiply(false, false, nq, hd, nk, p, nk, v, row, o, D, 0f, parallel: false);
                }
            }
            finally { if (rented != null) ArrayPool<float>.Shared.Return(rented); }
        });
    }

    /// <summary>Backward of <see cref="Forward"/>: accumulates into the q, k and v parts of dQkv.</summary>
    /// <param name="dQkv">[B, S, 3D] accumulated into (rows outside the layout's query/key ranges untouched).</param>
    /// <param name="dOutput">[B, Nq, D]</param>
    /// <param name="probs">[B, H, Nq, Nk] saved by Forward.</param>
    /// <param name="qkv">[B, S, 3D] the forward input.</param>
    public static void Backward(Span<float> dQkv, ReadOnlySpan<float> dOutput, ReadOnlySpan<float> probs, ReadOnlySpan<float> qkv, Layout layout)
    {
        layout.Validate(qkv.Length);
        layout.Validate(dQkv.Length);
        int nq = layout.Queries, nk = layout.Keys;
        if (dOutput.Length < (long)layout.Batch * nq * layout.Dim) throw new ArgumentException("Attention dOutput too small.");
        if (probs.Length < (long)layout.Batch * layout.Heads * nq * nk) throw new ArgumentException("Attention probs too small: run Forward with a probs buffer.");
        fixed (float* pdq = dQkv) fixed (float* pdo = dOutput) fixed (float* pp = probs) fixed (float* pq = qkv)
            BackwardAll(pdq, pdo, pp, pq, layout);
    }

    static void BackwardAll(float* dQkv, float* dOutput, float* probs, float* qkv, Layout l)
    {
        int nq = l.Queries, nk = l.Keys, D = l.Dim, hd = l.HeadDim, row = 3 * D;
        float scale = l.Scale;
        Parallelism.For(0, l.Batch * l.Heads, task =>
        {
            int b = task / l.Heads, h = task % l.Heads;
            long seqOff = (long)b * l.SeqLen * row;
            long qOff = seqOff + (long)l.QueryStart * row + h * hd;
            long kOff = seqOff + (long)l.KeyStart * row + D + h * hd;
            long vOff = seqOff + (long)l.KeyStart * row + 2 * D + h * hd;
            float* dO = dOutput + (long)b * nq * D + h * hd;
            float* p = probs + (long)task * nq * nk;
            float[] rented = ArrayPool<float>.Shared.Rent(nq * nk);
            try
            {
                fixed (float* dS = rented)
                {
                    // forward: O = P V      → dV += Pᵀ dO          [Nk, d]
                    Gemm.Multiply(true, false, nk, hd, nq, p, nk, dO, D, dQkv + vOff, row, 1f, parallel: false);
                    // forward: O = P V      → dP = dO Vᵀ           [Nq, Nk]
                    Gemm.Multiply(false, true, nq, nk, hd, dO, D, qkv + vOff, row, dS, nk, 0f, parallel: false);
                    // forward: P = softmax(S/√d) → dS = P ⊙ (dP − Σ dP⊙P) / √d, in place
                    for (int i = 0; i < nq; i++)
                    {
                        var ds = new Span<float>(dS + (long)i * nk, nk);
                        Softmax.RowBackward(ds, new ReadOnlySpan<float>(p + (long)i * nk, nk), ds, scale);
                    }
                    // forward: S = Q Kᵀ     → dQ += dS K            [Nq, d]
                    Gemm.Multiply(false, false, nq, hd, nk, dS, nk, qkv + kOff, row, dQkv + qOff, row, 1f, parallel: false);
                    //                         dK += dSᵀ Q           [Nk, d]
                    Gemm.Multiply(true, false, nk, hd, nq, dS, nk, qkv + qOff, row, dQkv + kOff, row, 1f, parallel: false);
                }
            }
            finally { ArrayPool<float>.Shared.Return(rented); }
        });
    }
}
