using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>One pre-norm transformer block: weights (views into the model's state dict), the forward every model runs (the
/// backbone's own inference, memory tokens, the multi-task pass, VQT's query paths, full fine-tuning) and its backward — side by side.
/// The families differ here only in LayerScale (each branch scaled by γ before its residual add: DINOv2, DeiT-III), the MLP's
/// activation (GELU or CLIP's QuickGELU) and whether qkv has a bias.</summary>
/// <remarks>Legend: B batch, S stream rows per sample (N original tokens + extra rows such as task class tokens or queries),
/// D width, F MLP width, m memory rows of one memory set (shared by the batch: keys/values only, never in the stream).</remarks>
internal sealed class VitBlock
{
    readonly VisionTransformer _model;
    public readonly int Index;
    public readonly Tensor Norm1W, Norm1B, QkvW, ProjW, ProjB, Norm2W, Norm2B, Fc1W, Fc1B, Fc2W, Fc2B;
    /// <summary>[3D] or null (no qkv bias); [D] LayerScale's γ of each branch, or null.</summary>
    public readonly Tensor? QkvB, Gamma1, Gamma2;
    // packed panels, each with the weights' version it holds: a stale one is repacked into its own buffer, not reallocated
    readonly PackedPanels?[] _packed = new PackedPanels?[8];
    int _version;

    public VitBlock(VisionTransformer model, int index)
    {
        _model = model; Index = index;
        var p = model.Parameters; string b = $"blocks.{index}.";
        Norm1W = p[b + "norm1.weight"]; Norm1B = p[b + "norm1.bias"];
        QkvW = p[b + "attn.qkv.weight"]; QkvB = p.GetValueOrDefault(b + "attn.qkv.bias");
        Gamma1 = p.GetValueOrDefault(b + "ls1.gamma"); Gamma2 = p.GetValueOrDefault(b + "ls2.gamma");
        ProjW = p[b + "attn.proj.weight"]; ProjB = p[b + "attn.proj.bias"];
        Norm2W = p[b + "norm2.weight"]; Norm2B = p[b + "norm2.bias"];
        Fc1W = p[b + "mlp.fc1.weight"]; Fc1B = p[b + "mlp.fc1.bias"];
        Fc2W = p[b + "mlp.fc2.weight"]; Fc2B = p[b + "mlp.fc2.bias"];
    }

    VitConfig C => _model.Config;
    ReadOnlySpan<float> QkvBias => QkvB is null ? default : QkvB.Data;
    // Forward panels hold Wᵀ (y = x Wᵀ); backward panels hold W (dx = dy W). Both packed once while the weights are frozen.
    public Gemm.PackedB QkvPacked => Packed(0, true, C.Dim, 3 * C.Dim, QkvW);
    public Gemm.PackedB ProjPacked => Packed(1, true, C.Dim, C.Dim, ProjW);
    public Gemm.PackedB Fc1Packed => Packed(2, true, C.Dim, C.MlpDim, Fc1W);
    public Gemm.PackedB Fc2Packed => Packed(3, true, C.MlpDim, C.Dim, Fc2W);
    Gemm.PackedB QkvPackedT => Packed(4, false, 3 * C.Dim, C.Dim, QkvW);
    Gemm.PackedB ProjPackedT => Packed(5, false, C.Dim, C.Dim, ProjW);
    Gemm.PackedB Fc1PackedT => Packed(6, false, C.MlpDim, C.Dim, Fc1W);
    Gemm.PackedB Fc2PackedT => Packed(7, false, C.Dim, C.MlpDim, Fc2W);

    /// <summary>Slot <paramref name="slot"/>'s panels of W [rows, cols] (transB: Wᵀ, K = cols; else W, K = rows), packed on
    /// first use and repacked in place after <see cref="InvalidatePacked"/>.</summary>
    Gemm.PackedB Packed(int slot, bool transB, int k, int n, Tensor w)
    {
        int version = Volatile.Read(ref _version);
        var entry = _packed[slot];   // a class: read and replaced whole, never half written
        if (entry is not null && entry.Version == version) return entry.Panels;
        lock (_packed)   // concurrent forwards wait for one repack instead of reading panels half rewritten
        {
            entry = _packed[slot];
            if (entry is null) _packed[slot] = entry = new PackedPanels(Gemm.Pack(transB, k, n, w.Data, transB ? k : n), version);
            else if (entry.Version != version)
            {
                Gemm.Repack(entry.Panels, transB, w.Data, transB ? k : n);
                _packed[slot] = entry = new PackedPanels(entry.Panels, version);
            }
            return entry.Panels;
        }
    }
    sealed record PackedPanels(Gemm.PackedB Panels, int Version);

    /// <summary>The weights changed (a training step): panels repack on next use; integer weights are dropped (inference only).</summary>
    public void InvalidatePacked() { Interlocked.Increment(ref _version); lock (_quantized) Array.Clear(_quantized); }

    // integer inference (VisionTransformer.InferencePrecision): the same four layers quantised once per format, used only when
    // no tape is kept; [layer, format]
    readonly QuantizedGemm.Weights?[,] _quantized = new QuantizedGemm.Weights?[4, 2];
    enum Layer { Qkv, Proj, Fc1, Fc2 }

    /// <summary>output[R, N] (+)= input[R, K]·Wᵀ + b for one of the block's Linear layers, fp32 or integer.</summary>
    void Project(Layer layer, QuantizedFormat? format, Span<float> output, ReadOnlySpan<float> input, ReadOnlySpan<float> bias, int rows, bool accumulate = false, bool gelu = false)
    {
        if (format is QuantizedFormat f)
        {
            QuantizedGemm.Weights q;
            lock (_quantized)
                q = _quantized[(int)layer, (int)f] ??= layer switch
                {
                    Layer.Qkv => QuantizedGemm.Quantize(QkvW.Data, 3 * C.Dim, C.Dim, f),
                    Layer.Proj => QuantizedGemm.Quantize(ProjW.Data, C.Dim, C.Dim, f),
                    Layer.Fc1 => QuantizedGemm.Quantize(Fc1W.Data, C.MlpDim, C.Dim, f),
                    _ => QuantizedGemm.Quantize(Fc2W.Data, C.Dim, C.MlpDim, f),
                };
            QuantizedGemm.Forward(output, input, q, bias, rows, accumulate, gelu);
            return;
        }
        var packed = layer switch { Layer.Qkv => QkvPacked, Layer.Proj => ProjPacked, Layer.Fc1 => Fc1Packed, _ => Fc2Packed };
        Linear.Forward(output, input, packed, bias, rows, accumulate);
    }

    /// <summary>The block's one forward: stream x [B, S, D] updated in place, memory sets read as extra keys/values by the groups
    /// that name them. With <paramref name="keep"/> the tape keeps what <see cref="Backward"/> needs; without (inference, the fast
    /// path) nothing is saved and the tape holds only the working buffers (qkv; the rest is the model-wide scratch).</summary>
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
#pragma warning disable MMT0001   // int8: experimental (below the agreement gate), still run when asked for
        QuantizedFormat? integer = keep ? null : _model.InferencePrecision switch
        {
            InferencePrecision.Int8 => QuantizedFormat.Int8, InferencePrecision.Int16 => QuantizedFormat.Int16, _ => null,
        };
#pragma warning restore MMT0001
        if (keep) Array.Copy(x, tape.Input, (long)rows * d);
        // LN1 and qkv of the stream rows                                       [B, S, D] → [B, S, 3D]
        LayerNorm.Forward(tape.Ln1, keep ? tape.Ln1Mean : default, keep ? tape.Ln1Rstd : default, x, Norm1W.Data, Norm1B.Data, rows, d, c.LayerNormEps);
        Project(Layer.Qkv, integer, tape.Qkv, tape.Ln1, QkvBias, rows);
        // LN1 and qkv of each memory set, once for the whole batch              [m, D] → [m, 3D]
        for (int j = 0; j < memories.Count; j++)
        {
            int m = memories[j].Length / d;
            LayerNorm.Forward(tape.MemLn1[j], keep ? tape.MemMean[j] : default, keep ? tape.MemRstd[j] : default, memories[j].Span, Norm1W.Data, Norm1B.Data, m, d, c.LayerNormEps);
            Project(Layer.Qkv, integer, tape.MemQkv[j], tape.MemLn1[j], QkvBias, m);
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
        // x ← x + [γ1 ⊙] (Attn Wprojᵀ + b) (rows no group queried keep a zero attention output: the residual passes them through)
        if (Gamma1 is null) Project(Layer.Proj, integer, px, pa, ProjB.Data, prows, accumulate: true);
        else
        {
            Project(Layer.Proj, integer, tape.Branch1, pa, ProjB.Data, prows);
            AddScaled(px, tape.Branch1, Gamma1.Data, prows, d);
        }
        if (keep) Array.Copy(px, tape.Mid, (long)prows * d);
        // x ← x + [γ2 ⊙] FC2(act(FC1(LN2(x)))), act = GELU or QuickGELU (its derivative kept for backward)
        LayerNorm.Forward(tape.Ln2, keep ? tape.Ln2Mean : default, keep ? tape.Ln2Rstd : default, px, Norm2W.Data, Norm2B.Data, prows, d, c.LayerNormEps);
        if (c.Activation == VitActivation.Gelu && integer is null) Linear.ForwardGelu(keep ? tape.GeluDerivative : default, tape.Gelu, tape.Ln2, Fc1Packed, Fc1B.Data, prows);
        else if (c.Activation == VitActivation.Gelu) Project(Layer.Fc1, integer, tape.Gelu, tape.Ln2, Fc1B.Data, prows, gelu: true);
        else
        {
            var hidden = tape.Gelu.AsSpan(0, prows * c.MlpDim);
            Project(Layer.Fc1, integer, hidden, tape.Ln2, Fc1B.Data, prows);
            QuickGelu.Forward(hidden, keep ? tape.GeluDerivative.AsSpan(0, prows * c.MlpDim) : default, hidden);
        }
        if (Gamma2 is null) Project(Layer.Fc2, integer, px, tape.Gelu, Fc2B.Data, prows, accumulate: true);
        else
        {
            Project(Layer.Fc2, integer, tape.Branch2, tape.Gelu, Fc2B.Data, prows);
            AddScaled(px, tape.Branch2, Gamma2.Data, prows, d);
        }
        live?.Scatter(px, x, batch, seqRows, d);
    }

    /// <summary>x[r] += γ ⊙ branch[r] for each of <paramref name="rows"/> rows (LayerScale's residual add).</summary>
    static void AddScaled(Span<float> x, ReadOnlySpan<float> branch, ReadOnlySpan<float> gamma, int rows, int d)
    {
        for (int r = 0; r < rows; r++) TensorPrimitives.FusedMultiplyAdd(branch.Slice(r * d, d), gamma, x.Slice(r * d, d), x.Slice(r * d, d));
    }

    /// <summary>into[r] = γ ⊙ dx[r] (the gradient of a LayerScale branch); dγ += Σ_r dx[r] ⊙ branch[r] when weight gradients
    /// are asked for.</summary>
    static void ScaleBackward(Span<float> into, ReadOnlySpan<float> dx, ReadOnlySpan<float> gamma, ReadOnlySpan<float> branch, Span<float> dGamma, int rows, int d)
    {
        for (int r = 0; r < rows; r++)
        {
            TensorPrimitives.Multiply(dx.Slice(r * d, d), gamma, into.Slice(r * d, d));
            if (!dGamma.IsEmpty) TensorPrimitives.FusedMultiplyAdd(dx.Slice(r * d, d), branch.Slice(r * d, d), dGamma, dGamma);
        }
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

    /// <summary>Backward of <c>Forward</c> (which kept its tape):
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
        // forward: x_out = mid + [γ2 ⊙] F2         → dF2 = [γ2 ⊙] dx; dγ2 += Σ dx ⊙ F2
        ReadOnlySpan<float> dF2 = pdx;
        if (Gamma2 is not null)
        {
            ScaleBackward(s.DScaled, pdx, Gamma2.Data, tape.Branch2, w?.Gamma2 ?? default, prows, d);
            dF2 = s.DScaled;
        }
        // forward: F2 = Act Wfc2ᵀ + b2              → dAct = dF2 Wfc2; dWfc2 += dF2ᵀ Act; db2 += Σ dF2
        //          and Act = act(Fc1)              → dFc1 = dAct ⊙ act'(Fc1), fused into the same GEMM (act' kept by forward)
        Linear.BackwardInputGelu(s.DHidden2, dF2, Fc2PackedT, tape.GeluDerivative, prows);
        if (w != null) Linear.Backward(default, w.Fc2W, w.Fc2B, dF2, tape.Gelu, Fc2W.Data, prows, f, d);
        // forward: Fc1 = Ln2 Wfc1ᵀ + b1           → dLn2 = dFc1 Wfc1
        Linear.BackwardInput(s.DRow, s.DHidden2, Fc1PackedT, prows, accumulate: false);
        if (w != null) Linear.Backward(default, w.Fc1W, w.Fc1B, s.DHidden2, tape.Ln2, Fc1W.Data, prows, d, f);
        // forward: Ln2 = LN2(mid)                  → dMid = dx (residual) + LN2'(dLn2)
        LayerNorm.Backward(pdx, w?.Norm2W ?? default, w?.Norm2B ?? default, s.DRow, tape.Mid, Norm2W.Data, tape.Ln2Mean, tape.Ln2Rstd, prows, d);
        // forward: mid = x + [γ1 ⊙] P               → dP = [γ1 ⊙] dMid; dγ1 += Σ dMid ⊙ P
        ReadOnlySpan<float> dP = pdx;
        if (Gamma1 is not null)
        {
            ScaleBackward(s.DScaled, pdx, Gamma1.Data, tape.Branch1, w?.Gamma1 ?? default, prows, d);
            dP = s.DScaled;
        }
        // forward: P = Attn Wprojᵀ + bp             → dAttn = dP Wproj
        //                                          (dWproj first: with live rows, dAttn then overwrites the gathered Attn)
        if (w != null) Linear.Backward(default, w.ProjW, w.ProjB, dP, pa, ProjW.Data, prows, d, d);
        Linear.BackwardInput(live is null ? s.DRow : tape.LiveAttn, dP, ProjPackedT, prows, accumulate: false);
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
        if (w != null) Linear.Backward(default, w.QkvW, QkvB is null ? default : w.QkvB, s.DQkv, tape.Ln1, QkvW.Data, rows, d, 3 * d);
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
            if (w != null) Linear.Backward(default, w.QkvW, QkvB is null ? default : w.QkvB, sum, tape.MemLn1[j], QkvW.Data, m, d, 3 * d);
            LayerNorm.Backward(dMemories[j].Span, w?.Norm1W ?? default, w?.Norm1B ?? default, dLn, memories[j].Span, Norm1W.Data, tape.MemMean[j], tape.MemRstd[j], m, d);
        }
    }
}

/// <summary>Weight gradients of one block (full fine-tuning), accumulated into; shapes as the weights.</summary>
internal sealed class BlockGrads(VitConfig c)
{
    readonly VitConfig _config = c;
    public readonly float[] Norm1W = new float[c.Dim], Norm1B = new float[c.Dim];
    public readonly float[] QkvW = new float[3 * c.Dim * c.Dim], QkvB = new float[3 * c.Dim];
    public readonly float[] ProjW = new float[c.Dim * c.Dim], ProjB = new float[c.Dim];
    public readonly float[] Norm2W = new float[c.Dim], Norm2B = new float[c.Dim];
    public readonly float[] Fc1W = new float[c.MlpDim * c.Dim], Fc1B = new float[c.MlpDim];
    public readonly float[] Fc2W = new float[c.Dim * c.MlpDim], Fc2B = new float[c.Dim];
    public readonly float[] Gamma1 = c.LayerScale ? new float[c.Dim] : [], Gamma2 = c.LayerScale ? new float[c.Dim] : [];

    /// <summary>(timm name suffix, gradient) pairs of the block's weights (as the config has them), to line up with the model's parameters.</summary>
    public IEnumerable<(string Suffix, float[] Grad)> Named()
    {
        yield return ("norm1.weight", Norm1W); yield return ("norm1.bias", Norm1B);
        yield return ("attn.qkv.weight", QkvW);
        if (_config.QkvBias) yield return ("attn.qkv.bias", QkvB);
        yield return ("attn.proj.weight", ProjW); yield return ("attn.proj.bias", ProjB);
        if (_config.LayerScale) yield return ("ls1.gamma", Gamma1);
        yield return ("norm2.weight", Norm2W); yield return ("norm2.bias", Norm2B);
        yield return ("mlp.fc1.weight", Fc1W); yield return ("mlp.fc1.bias", Fc1B);
        yield return ("mlp.fc2.weight", Fc2W); yield return ("mlp.fc2.bias", Fc2B);
        if (_config.LayerScale) yield return ("ls2.gamma", Gamma2);
    }
}
