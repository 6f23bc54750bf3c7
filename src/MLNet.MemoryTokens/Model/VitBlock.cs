using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>Who attends to what inside one block: a run of query rows, the stream rows they read, and the memory sets they read.</summary>
/// <remarks>Plain self-attention is one group (0, N, [(0, N)], []). Memory tokens: (0, N, [(0, N)], [0]). The masked variant keeps
/// the original rows to themselves, (0, N, [(0, N)], []), and adds per task t a class-token row that reads the originals,
/// itself and its memory: (N+t, 1, [(0, N), (N+t, 1)], [t]). VQT query rows read only the originals: (N, T, [(0, N)], []).</remarks>
public sealed record AttentionGroup(int QueryStart, int Queries, (int Start, int Rows)[] StreamKeys, int[] Memories, bool ReadsExternal = false);

/// <summary>The rows of each sample that anything reads after a block (the last block: the rows the heads read): runs of rows,
/// ascending and disjoint. Every row still gives keys and values; only live rows go through projection and MLP.</summary>
public sealed record LiveRows(params (int Start, int Count)[] Ranges)
{
    /// <summary>Live rows per sample.</summary>
    public int Count => Ranges.Sum(r => r.Count);

    public bool Holds(AttentionGroup g) => Ranges.Any(r => g.QueryStart >= r.Start && g.QueryStart + g.Queries <= r.Start + r.Count);

    internal void Validate(int seqRows)
    {
        int end = 0;
        foreach (var (start, count) in Ranges)
        {
            if (start < end || count < 1 || start + count > seqRows) throw new ArgumentException($"Live rows must be ascending, disjoint runs within the {seqRows} rows of a sample.");
            end = start + count;
        }
        if (Ranges.Length == 0) throw new ArgumentException("At least one row must be live.");
    }

    /// <summary>[B, S, D] → [B, Count, D]: each sample's live rows, in order.</summary>
    internal void Gather(float[] full, float[] live, int batch, int seqRows, int d)
    {
        int at = 0;
        for (int b = 0; b < batch; b++)
            foreach (var (start, count) in Ranges)
            {
                Array.Copy(full, ((long)b * seqRows + start) * d, live, (long)at * d, (long)count * d);
                at += count;
            }
    }

    /// <summary>[B, Count, D] → the live rows of [B, S, D] (the other rows untouched).</summary>
    internal void Scatter(float[] live, float[] full, int batch, int seqRows, int d)
    {
        int at = 0;
        for (int b = 0; b < batch; b++)
            foreach (var (start, count) in Ranges)
            {
                Array.Copy(live, (long)at * d, full, ((long)b * seqRows + start) * d, (long)count * d);
                at += count;
            }
    }
}

/// <summary>One pre-norm transformer block: weights (views into the model's state dict), inference forward, training forward
/// that keeps what backward needs, and backward — side by side.</summary>
/// <remarks>Legend: B batch, S stream rows per sample (N original tokens + extra rows such as task class tokens or queries),
/// D width, F MLP width, m memory rows of one memory set (shared by the batch: keys/values only, never in the stream).</remarks>
internal sealed class VitBlock
{
    readonly VisionTransformer _model;
    public readonly int Index;
    public readonly Tensor Norm1W, Norm1B, QkvW, QkvB, ProjW, ProjB, Norm2W, Norm2B, Fc1W, Fc1B, Fc2W, Fc2B;
    Gemm.PackedB? _qkv, _proj, _fc1, _fc2, _qkvT, _projT, _fc1T, _fc2T;

    public VitBlock(VisionTransformer model, int index)
    {
        _model = model; Index = index;
        var p = model.Parameters; string b = $"blocks.{index}.";
        Norm1W = p[b + "norm1.weight"]; Norm1B = p[b + "norm1.bias"];
        QkvW = p[b + "attn.qkv.weight"]; QkvB = p[b + "attn.qkv.bias"];
        ProjW = p[b + "attn.proj.weight"]; ProjB = p[b + "attn.proj.bias"];
        Norm2W = p[b + "norm2.weight"]; Norm2B = p[b + "norm2.bias"];
        Fc1W = p[b + "mlp.fc1.weight"]; Fc1B = p[b + "mlp.fc1.bias"];
        Fc2W = p[b + "mlp.fc2.weight"]; Fc2B = p[b + "mlp.fc2.bias"];
    }

    VitConfig C => _model.Config;
    // Forward panels hold Wᵀ (y = x Wᵀ); backward panels hold W (dx = dy W). Both packed once while the weights are frozen.
    public Gemm.PackedB QkvPacked => _qkv ??= Gemm.Pack(true, C.Dim, 3 * C.Dim, QkvW.Data, C.Dim);
    public Gemm.PackedB ProjPacked => _proj ??= Gemm.Pack(true, C.Dim, C.Dim, ProjW.Data, C.Dim);
    public Gemm.PackedB Fc1Packed => _fc1 ??= Gemm.Pack(true, C.Dim, C.MlpDim, Fc1W.Data, C.Dim);
    public Gemm.PackedB Fc2Packed => _fc2 ??= Gemm.Pack(true, C.MlpDim, C.Dim, Fc2W.Data, C.MlpDim);
    Gemm.PackedB QkvPackedT => _qkvT ??= Gemm.Pack(false, 3 * C.Dim, C.Dim, QkvW.Data, C.Dim);
    Gemm.PackedB ProjPackedT => _projT ??= Gemm.Pack(false, C.Dim, C.Dim, ProjW.Data, C.Dim);
    Gemm.PackedB Fc1PackedT => _fc1T ??= Gemm.Pack(false, C.MlpDim, C.Dim, Fc1W.Data, C.Dim);
    Gemm.PackedB Fc2PackedT => _fc2T ??= Gemm.Pack(false, C.Dim, C.MlpDim, Fc2W.Data, C.MlpDim);
    public void InvalidatePacked() { _qkv = _proj = _fc1 = _fc2 = _qkvT = _projT = _fc1T = _fc2T = null; }

    /// <summary>x ← x + Proj(MHSA(LN1(x))); x ← x + FC2(GELU(FC1(LN2(x)))), with x = ws.X [B, N, D] updated in place.</summary>
    public void ForwardInference(VisionTransformer.Workspace ws, int batch)
    {
        var c = C;
        int rows = batch * c.NumTokens, d = c.Dim;
        LayerNorm.Forward(ws.Ln, default, default, ws.X, Norm1W.Data, Norm1B.Data, rows, d, c.LayerNormEps);
        Linear.Forward(ws.Qkv, ws.Ln, QkvPacked, QkvB.Data, rows);
        Attention.Forward(ws.Attn, default, ws.Qkv, Attention.Layout.SelfAttention(batch, c.NumTokens, c.Heads, c.HeadDim));
        Linear.Forward(ws.X, ws.Attn, ProjPacked, ProjB.Data, rows, accumulate: true);
        LayerNorm.Forward(ws.Ln, default, default, ws.X, Norm2W.Data, Norm2B.Data, rows, d, c.LayerNormEps);
        Linear.ForwardGelu(default, ws.Hidden, ws.Ln, Fc1Packed, Fc1B.Data, rows);
        Linear.Forward(ws.X, ws.Hidden, Fc2Packed, Fc2B.Data, rows, accumulate: true);
    }

    /// <summary>The last block of a classifier: every row gives keys/values, only the class token (row 0) goes on —
    /// cls [B, D] is that row after the block.</summary>
    public void ForwardInferenceClassToken(VisionTransformer.Workspace ws, int batch, float[] cls)
    {
        var c = C;
        int n = c.NumTokens, d = c.Dim;
        LayerNorm.Forward(ws.Ln, default, default, ws.X, Norm1W.Data, Norm1B.Data, batch * n, d, c.LayerNormEps);
        Linear.Forward(ws.Qkv, ws.Ln, QkvPacked, QkvB.Data, batch * n);
        // the class token's attention output                                    [B, 1, D]
        Attention.Forward(ws.Attn, default, ws.Qkv, new Attention.Layout(batch, n, c.Heads, c.HeadDim, 0, 1, 0, n));
        for (int b = 0; b < batch; b++) Array.Copy(ws.X, (long)b * n * d, cls, (long)b * d, d);
        Linear.Forward(cls, ws.Attn, ProjPacked, ProjB.Data, batch, accumulate: true);
        LayerNorm.Forward(ws.Ln, default, default, cls, Norm2W.Data, Norm2B.Data, batch, d, c.LayerNormEps);
        Linear.ForwardGelu(default, ws.Hidden, ws.Ln, Fc1Packed, Fc1B.Data, batch);
        Linear.Forward(cls, ws.Hidden, Fc2Packed, Fc2B.Data, batch, accumulate: true);
    }

    /// <summary>The general forward: stream x [B, S, D] updated in place, memory sets read as extra keys/values by the groups
    /// that name them. With <paramref name="tape"/> it keeps what <see cref="Backward"/> needs; without, it only computes.</summary>
    /// <param name="x">[B, S, D] the residual stream</param>
    /// <param name="memories">per memory set, its raw rows [m, D] for this layer (normalised by LN1 like stream rows)</param>
    /// <param name="live">The rows of each sample anything reads after this block (the last block: the rows heads read), or
    /// null: all. Every row still gives keys and values, but only live rows go through projection and MLP — the other rows'
    /// outputs are left stale. The groups must query live rows only.</param>
    public unsafe void Forward(float[] x, int batch, int seqRows, IReadOnlyList<ReadOnlyMemory<float>> memories, IReadOnlyList<AttentionGroup> groups, BlockTape tape,
        bool keep = true, ExternalKeyValues? external = null, bool weightGradients = false, LiveRows? live = null)
    {
        var c = C;
        int d = c.Dim, rows = batch * seqRows;
        tape.Ensure(c, batch, seqRows, memories, groups, keep, external?.Rows ?? 0, weightGradients, live);
        if (keep) Array.Copy(x, tape.Input, (long)rows * d);
        // LN1 and qkv of the stream rows                                       [B, S, D] → [B, S, 3D]
        LayerNorm.Forward(tape.Ln1, tape.Ln1Mean, tape.Ln1Rstd, x, Norm1W.Data, Norm1B.Data, rows, d, c.LayerNormEps);
        Linear.Forward(tape.Qkv, tape.Ln1, QkvPacked, QkvB.Data, rows);
        // LN1 and qkv of each memory set, once for the whole batch              [m, D] → [m, 3D]
        for (int j = 0; j < memories.Count; j++)
        {
            int m = memories[j].Length / d;
            LayerNorm.Forward(tape.MemLn1[j], tape.MemMean[j], tape.MemRstd[j], memories[j].Span, Norm1W.Data, Norm1B.Data, m, d, c.LayerNormEps);
            Linear.Forward(tape.MemQkv[j], tape.MemLn1[j], QkvPacked, QkvB.Data, m);
        }
        // attention, group by group, into the query rows of Attn              [B, S, D]
        // all groups in one pass over (sample, head): each sample's keys/values are read once for every group (probability
        // buffers are pinned-object-heap arrays)
        fixed (float* qkv = tape.Qkv) fixed (float* attn = tape.Attn)
        {
            var args = new Attention.ForwardGroup[groups.Count];
            for (int g = 0; g < groups.Count; g++)
            {
                var grp = groups[g];
                fixed (float* probs = keep ? tape.Probs[g] : null)
                    args[g] = new Attention.ForwardGroup(attn + (long)grp.QueryStart * d, (long)seqRows * d, d, probs, qkv + (long)grp.QueryStart * 3 * d, 3 * d,
                        (long)seqRows * 3 * d, grp.Queries, Segments(grp, qkv, seqRows, tape, external));
            }
            Attention.Forward(args, batch, c.Heads, c.HeadDim);
        }
        // past attention, only the live rows: gathered [B·c, D], the block's output scattered back at the end
        var (px, pa, prows) = (x, tape.Attn, rows);
        if (live is not null)
        {
            (px, pa, prows) = (tape.LiveX, tape.LiveAttn, batch * live.Count);
            live.Gather(x, px, batch, seqRows, d);
            live.Gather(tape.Attn, pa, batch, seqRows, d);
        }
        // x ← x + Attn Wprojᵀ + b (rows no group queried keep a zero attention output: the residual passes them through)
        Linear.Forward(px, pa, ProjPacked, ProjB.Data, prows, accumulate: true);
        if (keep) Array.Copy(px, tape.Mid, (long)prows * d);
        // x ← x + FC2(GELU(FC1(LN2(x))))
        LayerNorm.Forward(tape.Ln2, tape.Ln2Mean, tape.Ln2Rstd, px, Norm2W.Data, Norm2B.Data, prows, d, c.LayerNormEps);
        Linear.ForwardGelu(keep ? tape.GeluDerivative : default, tape.Gelu, tape.Ln2, Fc1Packed, Fc1B.Data, prows);
        Linear.Forward(px, tape.Gelu, Fc2Packed, Fc2B.Data, prows, accumulate: true);
        live?.Scatter(px, x, batch, seqRows, d);
    }

    unsafe Attention.Segment[] Segments(AttentionGroup grp, float* qkv, int seqRows, BlockTape tape, ExternalKeyValues? external)
    {
        int d = C.Dim, d3 = 3 * d;
        var segs = new Attention.Segment[grp.StreamKeys.Length + grp.Memories.Length + (grp.ReadsExternal ? 1 : 0)];
        int i = 0;
        if (grp.ReadsExternal)
        {
            if (external is null) throw new ArgumentException("An attention group reads external keys/values, but none were given.");
            if (external.Dim != d) throw new ArgumentException($"External keys/values are {external.Dim} wide; the block is {d}.");
            segs[i++] = new Attention.Segment(external);
        }
        foreach (var (start, n) in grp.StreamKeys) segs[i++] = Attention.Segment.OfQkv(qkv + (long)start * d3, C.Dim, (long)seqRows * d3, n);
        foreach (var j in grp.Memories)
            fixed (float* mq = tape.MemQkv[j]) segs[i++] = Attention.Segment.OfQkv(mq, C.Dim, 0, tape.MemRows[j]); // pinned: tape arrays are pinned-object-heap
        return segs;
    }

    /// <summary>Backward of the general <c>Forward</c>:
    /// dx [B, S, D] is the gradient of the block output on entry and of its input on exit; memory gradients [m, D] accumulate;
    /// with <paramref name="weightGrads"/> (full fine-tuning) every weight's gradient accumulates too.</summary>
    public unsafe void Backward(float[] dx, int batch, int seqRows, IReadOnlyList<ReadOnlyMemory<float>> memories, IReadOnlyList<AttentionGroup> groups,
        BlockTape tape, IReadOnlyList<Memory<float>> dMemories, BlockGrads? weightGrads, ExternalKeyValues? external = null)
    {
        var c = C;
        int d = c.Dim, f = c.MlpDim, rows = batch * seqRows;
        var w = weightGrads;
        var s = tape.Scratch;
        s.Ensure(c, rows);
        // the part past attention ran on the live rows only (forward's gather): dx of those rows, [B·c, D]
        var (pdx, pa, prows) = (dx, tape.Attn, rows);
        var live = tape.Live;
        if (live is not null)
        {
            (pdx, pa, prows) = (tape.LiveDx, tape.LiveAttn, batch * live.Count);
            live.Gather(dx, pdx, batch, seqRows, d);
        }
        // forward: x_out = mid + Gelu Wfc2ᵀ + b2   → dGelu = dx Wfc2; dWfc2 += dxᵀ Gelu; db2 += Σ dx
        //          and Gelu = gelu(Fc1)            → dFc1 = dGelu ⊙ gelu'(Fc1), fused into the same GEMM (gelu' kept by forward)
        Linear.BackwardInputGelu(s.DHidden2, pdx, Fc2PackedT, tape.GeluDerivative, prows);
        if (w != null) Linear.Backward(default, w.Fc2W, w.Fc2B, pdx, tape.Gelu, Fc2W.Data, prows, f, d);
        // forward: Fc1 = Ln2 Wfc1ᵀ + b1           → dLn2 = dFc1 Wfc1
        Linear.BackwardInput(s.DRow, s.DHidden2, Fc1PackedT, prows, accumulate: false);
        if (w != null) Linear.Backward(default, w.Fc1W, w.Fc1B, s.DHidden2, tape.Ln2, Fc1W.Data, prows, d, f);
        // forward: Ln2 = LN2(mid)                  → dMid = dx (residual) + LN2'(dLn2)
        LayerNorm.Backward(pdx, w?.Norm2W ?? default, w?.Norm2B ?? default, s.DRow, tape.Mid, Norm2W.Data, tape.Ln2Mean, tape.Ln2Rstd, prows, d);
        // forward: mid = x + Attn Wprojᵀ + bp      → dAttn = dMid Wproj
        //                                          (dWproj first: with live rows, dAttn then overwrites the gathered Attn)
        if (w != null) Linear.Backward(default, w.ProjW, w.ProjB, pdx, pa, ProjW.Data, prows, d, d);
        Linear.BackwardInput(live is null ? s.DRow : tape.LiveAttn, pdx, ProjPackedT, prows, accumulate: false);
        if (live is not null)
        {
            // back to full rows: dAttn and the residual dMid live-rows only, zero elsewhere (a stale row's output fed nothing)
            Array.Clear(s.DRow, 0, rows * d);
            Array.Clear(dx, 0, rows * d);
            live.Scatter(tape.LiveAttn, s.DRow, batch, seqRows, d);
            live.Scatter(pdx, dx, batch, seqRows, d);
        }
        // forward: Attn = MHSA(qkv)                → dQkv (stream rows) and per-sample dQkv of each memory set
        Array.Clear(s.DQkv, 0, rows * 3 * d);
        for (int j = 0; j < memories.Count; j++) Array.Clear(tape.DMemQkv[j], 0, batch * tape.MemRows[j] * 3 * d);
        fixed (float* qkv = tape.Qkv) fixed (float* dqkv = s.DQkv) fixed (float* dAttn = s.DRow)
            for (int g = 0; g < groups.Count; g++)
            {
                var grp = groups[g];
                var segs = Segments(grp, qkv, seqRows, tape, external);
                var dsegs = new Attention.GradSegment[segs.Length];
                int i = 0;
                if (grp.ReadsExternal) dsegs[i++] = Attention.GradSegment.Frozen;   // cached keys/values: no gradient goes back
                foreach (var (start, _) in grp.StreamKeys) dsegs[i++] = Attention.GradSegment.OfQkv(dqkv + (long)start * 3 * d, d, (long)seqRows * 3 * d);
                foreach (var j in grp.Memories)
                    fixed (float* dm = tape.DMemQkv[j]) dsegs[i++] = Attention.GradSegment.OfQkv(dm, d, (long)tape.MemRows[j] * 3 * d);
                fixed (float* probs = tape.Probs[g])
                    Attention.Backward(dqkv + (long)grp.QueryStart * 3 * d, (long)seqRows * 3 * d, dAttn + (long)grp.QueryStart * d, (long)seqRows * d, d,
                        probs, qkv + (long)grp.QueryStart * 3 * d, 3 * d, (long)seqRows * 3 * d, grp.Queries, segs, dsegs, batch, c.Heads, c.HeadDim);
            }
        // forward: qkv = Ln1 Wqkvᵀ + bq            → dLn1 = dQkv Wqkv
        Linear.BackwardInput(s.DRow, s.DQkv, QkvPackedT, rows, accumulate: false);
        if (w != null) Linear.Backward(default, w.QkvW, w.QkvB, s.DQkv, tape.Ln1, QkvW.Data, rows, d, 3 * d);
        // forward: Ln1 = LN1(x)                    → dx = dMid (residual) + LN1'(dLn1)
        LayerNorm.Backward(dx, w?.Norm1W ?? default, w?.Norm1B ?? default, s.DRow, tape.Input, Norm1W.Data, tape.Ln1Mean, tape.Ln1Rstd, rows, d);
        // memory rows: Σ over the batch first (the rows are shared), then back through qkv and LN1 into dMemory
        for (int j = 0; j < memories.Count; j++)
        {
            int m = tape.MemRows[j];
            var sum = tape.DMemQkvSum[j].AsSpan(0, m * 3 * d);
            sum.Clear();
            for (int b = 0; b < batch; b++) TensorPrimitives.Add(sum, tape.DMemQkv[j].AsSpan(b * m * 3 * d, m * 3 * d), sum);
            var dLn = tape.DMemLn1[j].AsSpan(0, m * d);
            Linear.BackwardInput(dLn, sum, QkvPackedT, m, accumulate: false);
            if (w != null) Linear.Backward(default, w.QkvW, w.QkvB, sum, tape.MemLn1[j], QkvW.Data, m, d, 3 * d);
            LayerNorm.Backward(dMemories[j].Span, w?.Norm1W ?? default, w?.Norm1B ?? default, dLn, memories[j].Span, Norm1W.Data, tape.MemMean[j], tape.MemRstd[j], m, d);
        }
    }
}

/// <summary>Weight gradients of one block (full fine-tuning), accumulated into; shapes as the weights.</summary>
internal sealed class BlockGrads(VitConfig c)
{
    public readonly float[] Norm1W = new float[c.Dim], Norm1B = new float[c.Dim];
    public readonly float[] QkvW = new float[3 * c.Dim * c.Dim], QkvB = new float[3 * c.Dim];
    public readonly float[] ProjW = new float[c.Dim * c.Dim], ProjB = new float[c.Dim];
    public readonly float[] Norm2W = new float[c.Dim], Norm2B = new float[c.Dim];
    public readonly float[] Fc1W = new float[c.MlpDim * c.Dim], Fc1B = new float[c.MlpDim];
    public readonly float[] Fc2W = new float[c.Dim * c.MlpDim], Fc2B = new float[c.Dim];

    /// <summary>(timm name suffix, gradient) pairs, to line up with the model's parameters.</summary>
    public IEnumerable<(string Suffix, float[] Grad)> Named() =>
    [
        ("norm1.weight", Norm1W), ("norm1.bias", Norm1B), ("attn.qkv.weight", QkvW), ("attn.qkv.bias", QkvB),
        ("attn.proj.weight", ProjW), ("attn.proj.bias", ProjB), ("norm2.weight", Norm2W), ("norm2.bias", Norm2B),
        ("mlp.fc1.weight", Fc1W), ("mlp.fc1.bias", Fc1B), ("mlp.fc2.weight", Fc2W), ("mlp.fc2.bias", Fc2B),
    ];
}

/// <summary>What one block's training forward keeps for backward, sized for a batch and stream length and reused across steps.</summary>
internal sealed class BlockTape
{
    public int Batch = -1, SeqRows = -1;
    public float[] Input = [], Ln1 = [], Ln1Mean = [], Ln1Rstd = [], Qkv = [], Attn = [], Mid = [], Ln2 = [], Ln2Mean = [], Ln2Rstd = [], GeluDerivative = [], Gelu = [];
    /// <summary>The live rows of the last forward (null: all), and their gathered stream, attention output and gradient [B·c, D].</summary>
    public LiveRows? Live;
    public float[] LiveX = [], LiveAttn = [], LiveDx = [];
    public float[][] Probs = [];
    public int[] MemRows = [];
    public float[][] MemLn1 = [], MemMean = [], MemRstd = [], MemQkv = [], DMemQkv = [], DMemQkvSum = [], DMemLn1 = [];
    /// <summary>Backward scratch shared by every block of a model (blocks run one at a time).</summary>
    public BackwardScratch Scratch = null!;

    static float[] Pinned(long n) => GC.AllocateUninitializedArray<float>((int)n, pinned: true);

    bool _weightInputs;

    /// <param name="weightInputs">Keep LN outputs, attention output and GELU output per layer: only weight gradients (full
    /// fine-tuning) read them; otherwise they live in the model-wide scratch and the tape holds just what activation gradients need.</param>
    public void Ensure(VitConfig c, int batch, int seqRows, IReadOnlyList<ReadOnlyMemory<float>> memories, IReadOnlyList<AttentionGroup> groups, bool keep = true,
        int externalRows = 0, bool weightInputs = false, LiveRows? live = null)
    {
        int d = c.Dim;
        long rows = (long)batch * seqRows;
        if (live is not null)
        {
            live.Validate(seqRows);
            if (!groups.All(live.Holds)) throw new ArgumentException("Every query row must be live: a group queries rows outside the live ones.");
            int n = live.Count;
            if (LiveX.Length != batch * n * d) { LiveX = Pinned(batch * n * d); LiveAttn = Pinned(batch * n * d); LiveDx = Pinned(batch * n * d); }
        }
        Live = live;
        if (batch != Batch || seqRows != SeqRows || weightInputs != _weightInputs)
        {
            Input = Pinned(rows * d); Ln1Mean = Pinned(rows); Ln1Rstd = Pinned(rows);
            Qkv = Pinned(rows * 3 * d); Mid = Pinned(rows * d); Ln2Mean = Pinned(rows); Ln2Rstd = Pinned(rows); GeluDerivative = Pinned(rows * c.MlpDim);
            if (weightInputs) { Ln1 = Pinned(rows * d); Ln2 = Pinned(rows * d); Attn = Pinned(rows * d); Gelu = Pinned(rows * c.MlpDim); }
            else
            {
                Scratch.EnsureForward(c, rows);
                Ln1 = Ln2 = Scratch.Ln; Attn = Scratch.Attn; Gelu = Scratch.Hidden;
            }
            Batch = batch; SeqRows = seqRows; _weightInputs = weightInputs; Probs = [];
        }
        // rows no group queries must have a zero attention output (the residual passes them through); with live rows, only
        // those are read past attention
        var clear = new bool[seqRows];
        if (live is null) clear.AsSpan().Fill(true);
        else foreach (var (start, count) in live.Ranges) clear.AsSpan(start, count).Fill(true);
        foreach (var g in groups) clear.AsSpan(g.QueryStart, g.Queries).Clear();
        for (int r = 0; r < seqRows; r++)
        {
            if (!clear[r]) continue;
            int end = r;
            while (end < seqRows && clear[end]) end++;
            for (int b = 0; b < batch; b++) Array.Clear(Attn, (int)(((long)b * seqRows + r) * d), (end - r) * d);
            r = end;
        }
        var memRows = memories.Select(m => m.Length / d).ToArray();
        if (!memRows.AsSpan().SequenceEqual(MemRows) || DMemQkv.Length != memRows.Length || (memRows.Length > 0 && DMemQkv[0].Length < (long)batch * memRows[0] * 3 * d))
        {
            MemRows = memRows;
            MemLn1 = memRows.Select(m => Pinned(m * d)).ToArray();
            MemMean = memRows.Select(m => Pinned(m)).ToArray();
            MemRstd = memRows.Select(m => Pinned(m)).ToArray();
            MemQkv = memRows.Select(m => Pinned(m * 3 * d)).ToArray();
            DMemQkv = memRows.Select(m => Pinned((long)batch * m * 3 * d)).ToArray();
            DMemQkvSum = memRows.Select(m => Pinned(m * 3 * d)).ToArray();
            DMemLn1 = memRows.Select(m => Pinned(m * d)).ToArray();
        }
        if (Probs.Length != groups.Count) Probs = new float[groups.Count][];
        if (!keep) return;   // inference: scores live in per-task scratch
        for (int g = 0; g < groups.Count; g++)
        {
            int nk = groups[g].StreamKeys.Sum(k => k.Rows) + groups[g].Memories.Sum(j => memRows[j]) + (groups[g].ReadsExternal ? externalRows : 0);
            long need = (long)batch * c.Heads * groups[g].Queries * nk;
            if (Probs[g] is null || Probs[g].Length != need) Probs[g] = Pinned(need);
        }
    }
}

/// <summary>Scratch one model needs at a time (blocks run one after another): backward's [B·S, D], [B·S, 3D] and [B·S, F]
/// buffers, and the forward intermediates a frozen backbone's backward never reads (LN outputs, attention output, GELU output).</summary>
internal sealed class BackwardScratch
{
    public float[] DRow = [], DQkv = [], DHidden2 = [];
    public float[] Ln = [], Attn = [], Hidden = [];

    public void EnsureForward(VitConfig c, long rows)
    {
        if (Ln.Length >= rows * c.Dim) return;
        Ln = new float[rows * c.Dim]; Attn = new float[rows * c.Dim]; Hidden = new float[rows * c.MlpDim];
    }

    public void Ensure(VitConfig c, long rows)
    {
        if (DRow.Length >= rows * c.Dim) return;
        DRow = new float[rows * c.Dim]; DQkv = new float[rows * 3 * c.Dim];
        DHidden2 = new float[rows * c.MlpDim];
    }
}
