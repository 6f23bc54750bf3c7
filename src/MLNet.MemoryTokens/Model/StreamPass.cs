using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>The steps every whole-model forward is written with, over a stream laid out by a <see cref="StreamLayout"/>: embed
/// the images, run a block, move rows in and out of the stream, final-norm the row a head reads — and the same steps backward.
/// The backbone's own forward, memory tokens, the masked multi-task pass, VQT + memory and the baselines each spell out their
/// forward and backward with them. A forward that keeps its activations holds one tape per block until the backward; an
/// inference forward keeps nothing and reuses one set of working buffers for every block.</summary>
/// <remarks>Legend: B batch, S stream rows per sample, N original rows, P patches, D width, K = C_in·p·p values per patch.
/// One pass serves one caller at a time.</remarks>
internal sealed class StreamPass(VisionTransformer vit, StreamLayout layout)
{
    readonly BackwardScratch _scratch = new();   // blocks run one at a time: one scratch serves every tape
    BlockTape[] _tapes = [];                     // per block: what a forward that keeps its activations saves for backward
    BlockTape? _working;                         // every block of a forward that keeps nothing

    public VisionTransformer Model { get; } = vit;
    public StreamLayout Layout { get; } = layout;
    public int Batch { get; private set; } = -1;
    /// <summary>[B, S, D] the residual stream.</summary>
    public float[] X { get; private set; } = [];
    /// <summary>[B, S, D] the stream's gradient during backward.</summary>
    public float[] DX { get; private set; } = [];
    float[] _cols = [];        // [B·P, K] the patches as rows (im2col): the patch-weight gradient reads them
    float[] _patches = [];     // [B·P, D] patch embeddings
    float[] _row = [];         // [B, D] one row of every sample, as the last block left it (or their average: fc_norm)
    float[] _mean = [], _rstd = [];   // [B] the final LayerNorm's statistics of that row
    float[] _poolIn = [], _poolOut = [], _poolMean = [], _poolRstd = [];   // [B·r, D], [B·r]: the r rows pooled after the final norm
    readonly NormPreTape _normPre = new();   // norm_pre's input and statistics (pre-norm models)
    /// <summary>[B, D] the row <see cref="FinalNorm"/> normalised last (what a head reads), valid until the next call.</summary>
    public float[] Normed { get; private set; } = [];

    VitConfig C => Model.Config;
    int D => C.Dim;

    /// <summary>Sizes the buffers for <paramref name="batch"/> samples (reused while the batch size stays).</summary>
    public StreamPass Begin(int batch)
    {
        if (batch == Batch) return this;
        C.CheckBatch(batch, Layout.Rows, training: false);   // within the limits before anything is allocated (the tapes check the rest)
        int d = D;
        X = new float[(long)batch * Layout.Rows * d];
        DX = [];
        _cols = new float[(long)batch * C.NumPatches * C.InChannels * C.PatchSize * C.PatchSize];
        _patches = new float[(long)batch * C.NumPatches * d];
        _row = new float[batch * d]; Normed = new float[batch * d]; _mean = new float[batch]; _rstd = new float[batch];
        Batch = batch;
        return this;
    }

    /// <summary>Embeds images [B, C_in, H, W] into the original rows (class token <paramref name="classToken"/> [1, 1, D] in row 0,
    /// null for a model without one) and the task rows (<paramref name="taskClassTokens"/>, one [D] each).</summary>
    public void Embed(Tensor images, Tensor? classToken, IReadOnlyList<float[]>? taskClassTokens = null) =>
        Embedding.Forward(X, Layout, Model, images.Data, Batch, _cols, _patches, classToken is null ? default : classToken.Data, taskClassTokens ?? [], _normPre);

    /// <summary>Block <paramref name="layer"/> over the stream: what each query row reads (<paramref name="groups"/>, the memory
    /// sets [m, D] they name), which rows go on past attention (<paramref name="live"/>, null: all). With
    /// <paramref name="keep"/> the block's tape is kept for <see cref="BlockBackward"/>.</summary>
    public void Block(int layer, IReadOnlyList<AttentionGroup> groups, IReadOnlyList<ReadOnlyMemory<float>> memories, bool keep,
        LiveRows? live = null, bool weightGradients = false) =>
        Model.Blocks[layer].Forward(X, Batch, Layout.Rows, memories, groups, keep ? Tape(layer) : Working, keep, null, weightGradients, live);

    /// <summary>The qkv [B·S, 3D] the last block that kept nothing computed: how VQT reads the backbone's keys and values.</summary>
    public float[] WorkingQkv => Working.Qkv;

    BlockTape Working => _working ??= new BlockTape { Scratch = _scratch };

    BlockTape Tape(int layer)
    {
        if (_tapes.Length != C.Depth) _tapes = Enumerable.Range(0, C.Depth).Select(_ => new BlockTape { Scratch = _scratch }).ToArray();
        return _tapes[layer];
    }

    /// <summary>Writes <paramref name="rows"/> [r, D] into every sample at row <paramref name="row"/> (memory or query tokens
    /// of a layer: shared by the batch).</summary>
    public void Broadcast(int row, ReadOnlySpan<float> rows)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) rows.CopyTo(X.AsSpan((b * s + row) * d, rows.Length));
    }

    /// <summary>Copies rows <paramref name="row"/>.. of every sample out: [B, count·D].</summary>
    public void Read(int row, int count, Span<float> into)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) X.AsSpan((b * s + row) * d, count * d).CopyTo(into.Slice(b * count * d, count * d));
    }

    /// <summary>Final norm of row <paramref name="row"/> of every sample → <see cref="Normed"/> [B, D] (statistics kept
    /// for <see cref="FinalNormBackward"/>): the model's readout norm, <c>norm</c> (or <c>fc_norm</c>, which average-pooled
    /// models apply to the pooled vector: a masked task's row is read the same way).</summary>
    public float[] FinalNorm(int row)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) Array.Copy(X, ((long)b * s + row) * d, _row, b * d, d);
        LayerNorm.Forward(Normed, _mean, _rstd, _row, Model.NormWeight.Data, Model.NormBias.Data, Batch, d, C.LayerNormEps);
        return Normed;
    }

    /// <summary>The backbone's pooling of the last block's output → <see cref="Normed"/> [B, D], what a head reads (timm's
    /// <c>forward_head(pre_logits=True)</c>): the final-norm class token; a distilled model's final-norm class and distillation
    /// tokens averaged (each kept in <see cref="PooledRows"/> for the backbone's two heads); or the patch rows (prefix tokens
    /// excluded) averaged then <c>fc_norm</c>-ed, or final-normed then averaged (timm's <c>fc_norm=False</c>).</summary>
    public float[] Pool()
    {
        var c = C;
        int s = Layout.Rows, d = D, batch = Batch;
        if (c.GlobalPool == VitPooling.Token && !c.DistillationToken) return FinalNorm(Layout.ClassTokenRow);
        if (c.FcNorm)
        {
            // pooled = fc_norm(mean_p x[b, prefix + p])
            for (int b = 0; b < batch; b++) MeanOfRows(X.AsSpan((b * s + Layout.PatchRow0) * d, Layout.Patches * d), Layout.Patches, d, _row.AsSpan(b * d, d));
            LayerNorm.Forward(Normed, _mean, _rstd, _row, Model.NormWeight.Data, Model.NormBias.Data, batch, d, c.LayerNormEps);
            return Normed;
        }
        // the rows pooled after the final norm: class + distillation tokens (distilled) or every patch (average, norm first)
        var (row0, r) = c.DistillationToken ? (Layout.ClassTokenRow, 2) : (Layout.PatchRow0, Layout.Patches);
        if (_poolIn.Length != batch * r * d) { _poolIn = new float[batch * r * d]; _poolOut = new float[batch * r * d]; _poolMean = new float[batch * r]; _poolRstd = new float[batch * r]; }
        for (int b = 0; b < batch; b++) Array.Copy(X, ((long)b * s + row0) * d, _poolIn, (long)b * r * d, r * d);
        LayerNorm.Forward(_poolOut, _poolMean, _poolRstd, _poolIn, Model.NormWeight.Data, Model.NormBias.Data, batch * r, d, c.LayerNormEps);
        for (int b = 0; b < batch; b++) MeanOfRows(_poolOut.AsSpan(b * r * d, r * d), r, d, Normed.AsSpan(b * d, d));
        return Normed;
    }

    /// <summary>[B, 2, D] a distilled model's final-norm class and distillation tokens, as the last <see cref="Pool"/> left them.</summary>
    public ReadOnlySpan<float> PooledRows => _poolOut.AsSpan(0, Batch * 2 * D);

    /// <summary>into [D] = the mean of <paramref name="count"/> rows [count, D] (summed in row order, then scaled).</summary>
    internal static void MeanOfRows(ReadOnlySpan<float> rows, int count, int d, Span<float> into)
    {
        rows[..d].CopyTo(into);
        for (int i = 1; i < count; i++) TensorPrimitives.Add(into, rows.Slice(i * d, d), into);
        TensorPrimitives.Multiply(into, 1f / count, into);
    }

    /// <summary>Final norm of every row: the trunk's features [B, S, D] (unnormalised for an <c>fc_norm</c> model, whose final
    /// norm comes after pooling, as timm's <c>forward_features</c>).</summary>
    public void FinalNormAll(Span<float> features)
    {
        if (C.FcNorm) { X.AsSpan(0, Batch * Layout.Rows * D).CopyTo(features); return; }
        LayerNorm.Forward(features, default, default, X, Model.NormWeight.Data, Model.NormBias.Data, Batch * Layout.Rows, D, C.LayerNormEps);
    }

    // ---------------------------------------------------------------- backward, in the reverse order of the forward steps

    /// <summary>Starts backward at the head: dx is zero but at row <paramref name="row"/>, which gets the gradient through the
    /// final LayerNorm of dNormed [B, D] (its weights' gradients accumulate when given: full fine-tuning).</summary>
    public void FinalNormBackward(int row, ReadOnlySpan<float> dNormed, Span<float> dWeight = default, Span<float> dBias = default)
    {
        int s = Layout.Rows, d = D;
        // forward: Normed = LN(x[:, row])             → dRow; dx is zero elsewhere
        var dRow = new float[Batch * d];
        LayerNorm.Backward(dRow, dWeight, dBias, dNormed, _row, Model.NormWeight.Data, _mean, _rstd, Batch, d);
        if (DX.Length != X.Length) DX = new float[X.Length];
        Array.Clear(DX);
        for (int b = 0; b < Batch; b++) Array.Copy(dRow, b * d, DX, ((long)b * s + row) * d, d);
    }

    /// <summary>Starts backward at the head of a pooled readout (<see cref="Pool"/>): dx is zero but at the pooled rows, which get
    /// dPooled [B, D] back through the final norm and the pooling (the norm's weights' gradients accumulate when given).</summary>
    public void PoolBackward(ReadOnlySpan<float> dPooled, Span<float> dWeight = default, Span<float> dBias = default)
    {
        var c = C;
        if (c.GlobalPool == VitPooling.Token && !c.DistillationToken) { FinalNormBackward(Layout.ClassTokenRow, dPooled, dWeight, dBias); return; }
        int s = Layout.Rows, d = D, batch = Batch;
        if (DX.Length != X.Length) DX = new float[X.Length];
        Array.Clear(DX);
        if (c.FcNorm)
        {
            // forward: pooled = fc_norm(m), m = mean_p x[b, prefix + p]   → dm = fc_norm'(dPooled); dx[b, prefix + p] = dm / P
            var dMean = new float[batch * d];
            LayerNorm.Backward(dMean, dWeight, dBias, dPooled, _row, Model.NormWeight.Data, _mean, _rstd, batch, d);
            TensorPrimitives.Multiply(dMean, 1f / Layout.Patches, dMean);
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < Layout.Patches; i++) dMean.AsSpan(b * d, d).CopyTo(DX.AsSpan((b * s + Layout.PatchRow0 + i) * d, d));
            return;
        }
        // forward: pooled = mean_r LN(x[b, row0 + r])   → dLN_r = dPooled / r for each pooled row, back through the norm
        var (row0, r) = c.DistillationToken ? (Layout.ClassTokenRow, 2) : (Layout.PatchRow0, Layout.Patches);
        var dOut = new float[batch * r * d];
        var dIn = new float[batch * r * d];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < r; i++) TensorPrimitives.Multiply(dPooled.Slice(b * d, d), 1f / r, dOut.AsSpan((b * r + i) * d, d));
        LayerNorm.Backward(dIn, dWeight, dBias, dOut, _poolIn, Model.NormWeight.Data, _poolMean, _poolRstd, batch * r, d);
        for (int b = 0; b < batch; b++) Array.Copy(dIn, (long)b * r * d, DX, ((long)b * s + row0) * d, r * d);
    }

    /// <summary>Backward of <see cref="Block"/> (run with keep): dx of the block output → of its input, in place; the memory
    /// sets' gradients [m, D] accumulate into <paramref name="dMemories"/>, the weights' into <paramref name="weightGradients"/>.</summary>
    public void BlockBackward(int layer, IReadOnlyList<AttentionGroup> groups, IReadOnlyList<ReadOnlyMemory<float>> memories,
        IReadOnlyList<Memory<float>> dMemories, BlockGrads? weightGradients = null) =>
        Model.Blocks[layer].Backward(DX, Batch, Layout.Rows, memories, groups, _tapes[layer], dMemories, weightGradients);

    /// <summary>Zeroes the gradient of rows <paramref name="row"/>.. (rows whose block output nothing reads: memory tokens,
    /// dropped after each block).</summary>
    public void ClearGradient(int row, int count)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) Array.Clear(DX, (b * s + row) * d, count * d);
    }

    /// <summary>Sets the gradient of rows <paramref name="row"/>.. from <paramref name="from"/> [B, count·D] (the head's
    /// gradient of a layer's query outputs).</summary>
    public void WriteGradient(int row, int count, ReadOnlySpan<float> from)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) from.Slice(b * count * d, count * d).CopyTo(DX.AsSpan((b * s + row) * d, count * d));
    }

    /// <summary>into [count·D] += Σ_b dx[b, row..row+count]: the gradient of rows every sample shared (a layer's memory or
    /// queries, a class token).</summary>
    public void SumGradient(int row, int count, Span<float> into)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) TensorPrimitives.Add(into, DX.AsSpan((b * s + row) * d, count * d), into);
    }

    /// <summary>Back through <c>norm_pre</c> (pre-norm models; nothing otherwise): after the first block's backward, dx of the
    /// embedded rows becomes the gradient of the embedding before the norm, so a prefix or task token's gradient reads it
    /// (its weights' gradients accumulate when given: full fine-tuning). Call it once per backward.</summary>
    public void NormPreBackward(Span<float> dWeight = default, Span<float> dBias = default) =>
        Embedding.NormPreBackward(DX, Layout, Model, Batch, _normPre, dWeight, dBias);

    /// <summary>Backward of <see cref="Embed"/> into the backbone's embedding weights (full fine-tuning; after
    /// <see cref="NormPreBackward"/>): <paramref name="grad"/> gives each weight's gradient buffer by timm name.</summary>
    public void EmbedBackward(Func<string, float[]> grad) => Embedding.Backward(DX, Layout, Model, Batch, _cols, grad);
}
