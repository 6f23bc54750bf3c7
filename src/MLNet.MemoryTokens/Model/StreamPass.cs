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
    float[] _row = [];         // [B, D] one row of every sample, as the last block left it
    float[] _mean = [], _rstd = [];   // [B] the final LayerNorm's statistics of that row
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

    /// <summary>Embeds images [B, C_in, H, W] into the original rows (class token <paramref name="classToken"/> [D] in row 0) and
    /// the task rows (<paramref name="taskClassTokens"/>, one [D] each).</summary>
    public void Embed(Tensor images, ReadOnlySpan<float> classToken, IReadOnlyList<float[]>? taskClassTokens = null) =>
        Embedding.Forward(X, Layout, Model, images.Data, Batch, _cols, _patches, classToken, taskClassTokens ?? []);

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

    /// <summary>Final LayerNorm of row <paramref name="row"/> of every sample → <see cref="Normed"/> [B, D] (statistics kept
    /// for <see cref="FinalNormBackward"/>).</summary>
    public float[] FinalNorm(int row)
    {
        int s = Layout.Rows, d = D;
        for (int b = 0; b < Batch; b++) Array.Copy(X, ((long)b * s + row) * d, _row, b * d, d);
        LayerNorm.Forward(Normed, _mean, _rstd, _row, Model.NormWeight.Data, Model.NormBias.Data, Batch, d, C.LayerNormEps);
        return Normed;
    }

    /// <summary>Final LayerNorm of every row: the trunk's features [B, S, D].</summary>
    public void FinalNormAll(Span<float> features) =>
        LayerNorm.Forward(features, default, default, X, Model.NormWeight.Data, Model.NormBias.Data, Batch * Layout.Rows, D, C.LayerNormEps);

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

    /// <summary>Backward of <see cref="Embed"/> into the backbone's embedding weights (full fine-tuning).</summary>
    public void EmbedBackward(Span<float> dClassToken, Span<float> dPos, Span<float> dPatchWeight, Span<float> dPatchBias) =>
        Embedding.Backward(DX, Layout, Model, Batch, _cols, dClassToken, dPos, dPatchWeight, dPatchBias);
}
