using System.Runtime.Intrinsics;
using System.Buffers;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>Fused multi-head scaled dot-product attention over packed qkv rows, forward and backward.</summary>
/// <remarks>
/// Legend: B batch, H heads, d head dim, D = H·d; a qkv row is 3D wide (q | k | v, heads contiguous inside each: timm's layout).
/// Queries are a run of rows of each sequence; keys/values are one or more <see cref="Segment"/>s, each a run of rows
/// with its own batch stride — 0 for rows shared by every sample (memory tokens, computed once per step). The scores of
/// one (batch, head) task, [Nq, Σ segment rows], live in a per-task buffer only for that task unless probabilities are
/// kept for backward; segments fill adjacent score columns, so softmax runs over all keys at once.
/// </remarks>
public static unsafe class Attention
{
    /// <summary>Which rows of a [B, S, 3D] qkv buffer are queries and which are keys/values (one contiguous key range).</summary>
    public readonly record struct Layout(int Batch, int SeqLen, int Heads, int HeadDim, int QueryStart, int Queries, int KeyStart, int Keys)
    {
        public int Dim => Heads * HeadDim;
        public float Scale => 1f / MathF.Sqrt(HeadDim);
        public static Layout SelfAttention(int batch, int tokens, int heads, int headDim) => new(batch, tokens, heads, headDim, 0, tokens, 0, tokens);

        internal void Validate(long qkvLength)
        {
            // 64-bit sums and products: an int sum of two huge starts wrapped negative and passed
            if (Batch < 0 || SeqLen < 0 || Heads <= 0 || HeadDim <= 0 || Queries < 0 || Keys <= 0 || QueryStart < 0 || KeyStart < 0
                || (long)QueryStart + Queries > SeqLen || (long)KeyStart + Keys > SeqLen || (long)Heads * HeadDim * 3 > int.MaxValue)
                throw new ArgumentException($"Invalid attention layout {this}.");
            long need = Limits.Product(Batch, SeqLen, 3L * Dim);
            if (qkvLength < need) throw new ArgumentException($"qkv has {qkvLength} elements; layout {this} needs {need}.");
        }
    }

    /// <summary>A run of key/value rows: <c>Rows</c> keys at <c>K</c> and values at <c>V</c> (batch 0, D floats each, rows
    /// <c>RowStride</c> apart), the next sample's <c>BatchStride</c> floats further (0: shared by the whole batch); or rows held
    /// elsewhere (<c>Source</c>), widened per task.</summary>
    internal readonly struct Segment
    {
        public readonly float* K, V;
        public readonly int RowStride;
        public readonly long BatchStride;
        public readonly int Rows;
        public readonly ExternalKeyValues? Source;

        public Segment(float* k, float* v, int rowStride, long batchStride, int rows) { K = k; V = v; RowStride = rowStride; BatchStride = batchStride; Rows = rows; }
        public Segment(ExternalKeyValues source) { Source = source; Rows = source.Rows; }

        /// <summary>Rows of a [.., 3D] qkv buffer starting at <paramref name="qkvRow"/>.</summary>
        public static Segment OfQkv(float* qkvRow, int dim, long batchStride, int rows) => new(qkvRow + dim, qkvRow + 2 * dim, 3 * dim, batchStride, rows);
    }

    /// <summary>One (sample, head) task's view of a segment: <c>Rows</c> keys at <c>K</c>, values at <c>V</c>, rows <c>RowStride</c> apart.</summary>
    readonly struct TaskKeys(float* k, float* v, int rowStride, int rows)
    {
        public readonly float* K = k, V = v;
        public readonly int RowStride = rowStride, Rows = rows;
    }

    /// <summary>Floats of scratch a task needs to widen the external segments.</summary>
    static long ExternalFloats(Segment[] keys, int hd)
    {
        long n = 0;
        foreach (var s in keys) if (s.Source != null) n = checked(n + 2L * s.Rows * hd);
        return n;
    }

    /// <summary>Nq × Nk, the scores of one (sample, head) task, in 64-bit arithmetic and within <see cref="Limits.MaxTensorElements"/>:
    /// the product overflowed an int at 65,537 tokens (a 4096-pixel input) and sized a scratch buffer far too small.</summary>
    static long ScoreFloats(int nq, int nk) =>
        Limits.CheckElements($"The attention scores of {nq} queries over {nk} keys", (long)nq * nk, "Lower the image size.");

    /// <summary>Each segment's rows of sample b, head h; external ones widened into <paramref name="widened"/>.</summary>
    static void Resolve(Segment[] keys, int b, int h, int hd, TaskKeys* into, float* widened)
    {
        for (int i = 0; i < keys.Length; i++)
        {
            var s = keys[i];
            if (s.Source is null) { into[i] = new(s.K + b * s.BatchStride + h * hd, s.V + b * s.BatchStride + h * hd, s.RowStride, s.Rows); continue; }
            int n = s.Rows * hd;
            s.Source.ReadHead(b, h, hd, new Span<float>(widened, n), new Span<float>(widened + n, n));
            into[i] = new(widened, widened + n, hd, s.Rows);
            widened += 2 * n;
        }
    }

    /// <summary>Where a segment's key/value gradients go (rows laid out like the segment's); null pointers: the keys are frozen, skip them.
    /// The batch stride is never 0, so no two tasks write the same floats.</summary>
    internal readonly struct GradSegment(float* dk, float* dv, int rowStride, long batchStride)
    {
        public readonly float* DK = dk, DV = dv;
        public readonly int RowStride = rowStride;
        public readonly long BatchStride = batchStride;

        public static GradSegment OfQkv(float* dQkvRow, int dim, long batchStride) => new(dQkvRow + dim, dQkvRow + 2 * dim, 3 * dim, batchStride);
        public static GradSegment Frozen => new(null, null, 0, 0);
    }

    /// <summary>out[b, i, h·d:(h+1)·d] = softmax(q_i·Kᵀ/√d) V for every batch b and head h.</summary>
    /// <param name="output">[B, Nq, D]</param>
    /// <param name="probs">[B, H, Nq, Nk] kept for backward, or empty at inference.</param>
    /// <param name="qkv">[B, S, 3D]</param>
    /// <param name="layout">Which rows are queries and which are keys/values.</param>
    public static void Forward(Span<float> output, Span<float> probs, ReadOnlySpan<float> qkv, Layout layout)
    {
        layout.Validate(qkv.Length);
        int nq = layout.Queries, nk = layout.Keys, D = layout.Dim;
        if (output.Length < (long)layout.Batch * nq * D) throw new ArgumentException("Attention output too small.");
        bool keep = !probs.IsEmpty;
        if (keep && probs.Length < Limits.Product(layout.Batch, layout.Heads, nq, nk)) throw new ArgumentException("Attention probs buffer too small.");
        fixed (float* po = output) fixed (float* pp = probs) fixed (float* pq = qkv)
        {
            long seq = (long)layout.SeqLen * 3 * D;
            var keys = new[] { Segment.OfQkv(pq + (long)layout.KeyStart * 3 * D, D, seq, nk) };
            Forward(po, (long)nq * D, D, keep ? pp : null, pq + (long)layout.QueryStart * 3 * D, 3 * D, seq, nq, keys, layout.Batch, layout.Heads, layout.HeadDim);
        }
    }

    /// <summary>Backward of <see cref="Forward(Span{float}, Span{float}, ReadOnlySpan{float}, Layout)"/>: accumulates into the q, k and v parts of dQkv.</summary>
    /// <param name="dQkv">[B, S, 3D] accumulated into (rows outside the layout's query/key ranges untouched).</param>
    /// <param name="dOutput">[B, Nq, D]</param>
    /// <param name="probs">[B, H, Nq, Nk] saved by Forward.</param>
    /// <param name="qkv">[B, S, 3D] the forward input.</param>
    /// <param name="layout">As in Forward.</param>
    public static void Backward(Span<float> dQkv, ReadOnlySpan<float> dOutput, ReadOnlySpan<float> probs, ReadOnlySpan<float> qkv, Layout layout)
    {
        layout.Validate(qkv.Length);
        layout.Validate(dQkv.Length);
        int nq = layout.Queries, nk = layout.Keys, D = layout.Dim;
        if (dOutput.Length < (long)layout.Batch * nq * D) throw new ArgumentException("Attention dOutput too small.");
        if (probs.Length < Limits.Product(layout.Batch, layout.Heads, nq, nk)) throw new ArgumentException("Attention probs too small: run Forward with a probs buffer.");
        fixed (float* pdq = dQkv) fixed (float* pdo = dOutput) fixed (float* pp = probs) fixed (float* pq = qkv)
        {
            long seq = (long)layout.SeqLen * 3 * D, k0 = (long)layout.KeyStart * 3 * D, q0 = (long)layout.QueryStart * 3 * D;
            var keys = new[] { Segment.OfQkv(pq + k0, D, seq, nk) };
            var dKeys = new[] { GradSegment.OfQkv(pdq + k0, D, seq) };
            Backward(pdq + q0, seq, pdo, (long)nq * D, D, pp, pq + q0, 3 * D, seq, nq, keys, dKeys, layout.Batch, layout.Heads, layout.HeadDim);
        }
    }

    /// <summary>One group's forward arguments: its queries (row stride QRow, batch stride QBatchStride), output rows (stride
    /// OutRow, batch stride OutBatchStride), the segments it reads and, when training, where its probabilities go.</summary>
    internal readonly struct ForwardGroup(float* output, long outBatchStride, int outRow, float* probs, float* q, int qRow, long qBatchStride, int nq, Segment[] keys)
    {
        public readonly float* Output = output, Probs = probs, Q = q;
        public readonly long OutBatchStride = outBatchStride, QBatchStride = qBatchStride;
        public readonly int OutRow = outRow, QRow = qRow, Queries = nq;
        public readonly Segment[] Keys = keys;
        public int KeyRows { get { int n = 0; foreach (var s in Keys) n = checked(n + s.Rows); return n; } }
    }

    /// <summary>Segmented forward of one group. q: query rows (row stride qRow, batch stride qBatchStride); out: rows at stride outRow.</summary>
    internal static void Forward(float* output, long outBatchStride, int outRow, float* probs, float* q, int qRow, long qBatchStride, int nq,
        Segment[] keys, int batch, int heads, int hd) =>
        Forward([new ForwardGroup(output, outBatchStride, outRow, probs, q, qRow, qBatchStride, nq, keys)], batch, heads, hd);

    /// <summary>Several groups over the same rows, one (batch, head) task at a time running every group: a sample's keys and
    /// values are read from memory once for all of them (a multi-task pass's task rows re-read them, group by group, for a
    /// tenth of the pass).</summary>
    internal static void Forward(ForwardGroup[] groups, int batch, int heads, int hd)
    {
        float scale = 1f / MathF.Sqrt(hd);
        long external = 0;
        int maxQueries = 0;
        foreach (var g in groups) { external = Math.Max(external, ExternalFloats(g.Keys, hd)); maxQueries = Math.Max(maxQueries, g.Queries); }
        var nks = groups.Select(g => g.KeyRows).ToArray();
        var scores = groups.Select((g, i) => ScoreFloats(g.Queries, nks[i])).ToArray();   // checked before any task runs
        int maxSegments = groups.Max(g => g.Keys.Length);
        void Task(int task)
        {
            int b = task / heads, h = task % heads;
            TaskKeys* tk = stackalloc TaskKeys[maxSegments];
            for (int gi = 0; gi < groups.Length; gi++)
            {
                var g = groups[gi];
                int nq = g.Queries, nk = nks[gi];
                if (nq == 0) continue;
                var keys = g.Keys;
                float* qp = g.Q + b * g.QBatchStride + h * hd;
                float* o = g.Output + b * g.OutBatchStride + h * hd;
                int outRow = g.OutRow, qRow = g.QRow;
                float[]? rented = g.Probs == null ? Scratch.Get(Scratch.Slot.AttentionScores, scores[gi]) : null;
                float[]? widened = external > 0 ? Scratch.Get(Scratch.Slot.ExternalKeyValues, external) : null;
                fixed (float* scratch = rented) fixed (float* wide = widened)
                {
                    Resolve(keys, b, h, hd, tk, wide);
                    float* p = g.Probs != null ? g.Probs + (long)task * nq * nk : scratch;
                    if (nq <= SmallQueries) { ForwardSmall(o, outRow, p, qp, qRow, nq, nk, tk, keys.Length, hd, scale); continue; }
                    // S = Q Kᵀ, one block of columns per segment             [Nq, Nk]
                    int col = 0;
                    for (int si = 0; si < keys.Length; si++)
                    {
                        var s = tk[si];
                        Gemm.Multiply(false, true, nq, s.Rows, hd, qp, qRow, s.K, s.RowStride, p + col, nk, 0f, parallel: false);
                        col += s.Rows;
                    }
                    // P = softmax(S / √d) over all keys, row by row, in place
                    for (int i = 0; i < nq; i++)
                    {
                        var pr = new Span<float>(p + (long)i * nk, nk);
                        Softmax.RowForward(pr, pr, scale);
                    }
                    // O = Σ_seg P_seg V_seg                                  [Nq, d] into the head's columns
                    col = 0;
                    for (int si = 0; si < keys.Length; si++)
                    {
                        var s = tk[si];
                        Gemm.Multiply(false, false, nq, hd, s.Rows, p + col, nk, s.V, s.RowStride, o, outRow, col == 0 ? 0f : 1f, parallel: false);
                        col += s.Rows;
                    }
                }
            }
        }
        RunTasks(batch * heads, maxQueries, Task);
    }

    /// <summary>Segmented backward: dq (rows like q, stride qRow) and each segment's dk/dv accumulate; probs as saved by Forward.</summary>
    internal static void Backward(float* dq, long dqBatchStride, float* dOutput, long dOutBatchStride, int outRow, float* probs,
        float* q, int qRow, long qBatchStride, int nq, Segment[] keys, GradSegment[] dKeys, int batch, int heads, int hd)
    {
        int D = heads * hd, nk = 0;
        foreach (var s in keys) nk = checked(nk + s.Rows);
        float scale = 1f / MathF.Sqrt(hd);
        if (nq == 0) return;
        long external = ExternalFloats(keys, hd), scores = ScoreFloats(nq, nk);
        void Task(int task)
        {
            int b = task / heads, h = task % heads;
            float* qp = q + b * qBatchStride + h * hd;
            float* dqp = dq + b * dqBatchStride + h * hd;
            float* dO = dOutput + b * dOutBatchStride + h * hd;
            float* p = probs + (long)task * nq * nk;
            float[] rented = Scratch.Get(Scratch.Slot.AttentionScores, scores);
            float[]? widened = external > 0 ? Scratch.Get(Scratch.Slot.ExternalKeyValues, external) : null;
            TaskKeys* tk = stackalloc TaskKeys[keys.Length];
            fixed (float* dS = rented) fixed (float* wide = widened)
            {
                Resolve(keys, b, h, hd, tk, wide);
                if (nq <= SmallQueries) { BackwardSmall(dqp, qRow, dO, outRow, p, dS, qp, nq, nk, tk, dKeys, b, h, hd, scale); return; }
                int col = 0;
                for (int si = 0; si < keys.Length; si++)
                {
                    var s = tk[si]; var g = dKeys[si];
                    // forward: O = P V   → dV += Pᵀ dO                     [Nk_seg, d]
                    if (g.DV != null)
                        Gemm.Multiply(true, false, s.Rows, hd, nq, p + col, nk, dO, outRow, g.DV + b * g.BatchStride + h * hd, g.RowStride, 1f, parallel: false);
                    // forward: O = P V   → dP = dO Vᵀ                      [Nq, Nk_seg]
                    Gemm.Multiply(false, true, nq, s.Rows, hd, dO, outRow, s.V, s.RowStride, dS + col, nk, 0f, parallel: false);
                    col += s.Rows;
                }
                // forward: P = softmax(S/√d) → dS = P ⊙ (dP − Σ dP⊙P) / √d, in place
                for (int i = 0; i < nq; i++)
                {
                    var ds = new Span<float>(dS + (long)i * nk, nk);
                    Softmax.RowBackward(ds, new ReadOnlySpan<float>(p + (long)i * nk, nk), ds, scale);
                }
                col = 0;
                for (int si = 0; si < keys.Length; si++)
                {
                    var s = tk[si]; var g = dKeys[si];
                    // forward: S = Q Kᵀ → dQ += dS K                       [Nq, d]
                    Gemm.Multiply(false, false, nq, hd, s.Rows, dS + col, nk, s.K, s.RowStride, dqp, qRow, 1f, parallel: false);
                    //                      dK += dSᵀ Q                      [Nk_seg, d]
                    if (g.DK != null)
                        Gemm.Multiply(true, false, s.Rows, hd, nq, dS + col, nk, qp, qRow, g.DK + b * g.BatchStride + h * hd, g.RowStride, 1f, parallel: false);
                    col += s.Rows;
                }
            }
        }
        RunTasks(batch * heads, nq, Task);
    }

    /// <summary>Runs the (batch, head) tasks on the cores: few-query tasks (a micro-second each) in a handful of chunks, since
    /// scheduling each on its own cost more than the work (the multi-task pass runs one such group per task per layer).</summary>
    static void RunTasks(int tasks, int nq, Action<int> task)
    {
        if (nq <= SmallQueries) Parallelism.ForChunks(tasks, 8, (start, end) => { for (int t = start; t < end; t++) task(t); });
        else Parallelism.For(0, tasks, task);
    }

    /// <summary>Up to this many query rows a (batch, head) task is a few dot products and axpys over the keys: packing K and V
    /// for a GEMM would cost more than the product (a class token or VQT queries reading N keys).</summary>
    const int SmallQueries = 4;

    /// <summary>a · b over n floats: whole vectors inline (a few-query task calls this once per key, where a library call's
    /// set-up cost as much as the 64-float product).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            sum = Vector512.Sum(acc);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>y += alpha · x over n floats.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static void Axpy(float* y, float alpha, float* x, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (var va = Vector512.Create(alpha); i <= n - 16; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(x + i), va, Vector512.Load(y + i)).Store(y + i);
        for (; i < n; i++) y[i] += alpha * x[i];
    }

    static void ForwardSmall(float* o, int outRow, float* p, float* q, int qRow, int nq, int nk, TaskKeys* keys, int segments, int hd, float scale)
    {
        for (int i = 0; i < nq; i++)
        {
            float* qi = q + (long)i * qRow, oi = o + (long)i * outRow;
            var pi = new Span<float>(p + (long)i * nk, nk);
            int col = 0;
            for (int si = 0; si < segments; si++)                          // s_j = q_i · k_j
            {
                var s = keys[si];
                for (int j = 0; j < s.Rows; j++) pi[col + j] = Dot(qi, s.K + (long)j * s.RowStride, hd);
                col += s.Rows;
            }
            Softmax.RowForward(pi, pi, scale);
            new Span<float>(oi, hd).Clear();                                // o_i = Σ_j p_j v_j
            col = 0;
            for (int si = 0; si < segments; si++)
            {
                var s = keys[si];
                for (int j = 0; j < s.Rows; j++) Axpy(oi, pi[col + j], s.V + (long)j * s.RowStride, hd);
                col += s.Rows;
            }
        }
    }

    static void BackwardSmall(float* dq, int qRow, float* dO, int outRow, float* p, float* dS, float* q, int nq, int nk,
        TaskKeys* keys, GradSegment[] dKeys, int b, int h, int hd, float scale)
    {
        for (int i = 0; i < nq; i++)
        {
            var pi = new ReadOnlySpan<float>(p + (long)i * nk, nk);
            var dSi = new Span<float>(dS + (long)i * nk, nk);
            int col = 0;
            for (int si = 0; si < dKeys.Length; si++)
            {
                var s = keys[si]; var g = dKeys[si];
                float* v = s.V;
                for (int j = 0; j < s.Rows; j++)
                {
                    // forward: o_i = Σ_j p_j v_j → dp_j = dO_i · v_j; dv_j += p_j dO_i
                    dSi[col + j] = Dot(dO + (long)i * outRow, v + (long)j * s.RowStride, hd);
                    if (g.DV != null) Axpy(g.DV + b * g.BatchStride + h * hd + (long)j * g.RowStride, pi[col + j], dO + (long)i * outRow, hd);
                }
                col += s.Rows;
            }
            Softmax.RowBackward(dSi, pi, dSi, scale);                       // dS = P ⊙ (dP − Σ dP⊙P) / √d
            col = 0;
            for (int si = 0; si < dKeys.Length; si++)
            {
                var s = keys[si]; var g = dKeys[si];
                float* k = s.K;
                for (int j = 0; j < s.Rows; j++)
                {
                    // forward: s_j = q_i · k_j → dq_i += dS_j k_j; dk_j += dS_j q_i
                    Axpy(dq + (long)i * qRow, dSi[col + j], k + (long)j * s.RowStride, hd);
                    if (g.DK != null) Axpy(g.DK + b * g.BatchStride + h * hd + (long)j * g.RowStride, dSi[col + j], q + (long)i * qRow, hd);
                }
                col += s.Rows;
            }
        }
    }
}
