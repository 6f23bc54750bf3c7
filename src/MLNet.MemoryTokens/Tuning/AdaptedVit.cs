using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>A named trainable tensor and its gradient (accumulated by backward, cleared by the trainer).</summary>
public sealed record TrainableParameter(string Name, Tensor Value, Tensor Grad);

/// <summary>A frozen (or, for full fine-tuning, trainable) backbone plus the trainable parts of one adaptation:
/// per-layer memory tokens, a class token, a new head. Training forward keeps activations; backward fills gradients.</summary>
/// <remarks>
/// Stream layout per sample, S rows of width D: the N original tokens (class token first, then patches), and in the
/// attention-masked variant one more row, the task's own class token. Memory tokens are never stream rows: each layer
/// normalises its memory [m, D] with LN1, projects it to keys/values once per step, and lets the groups that name it read it.
/// Plain memory (Sandler et al. §3.1): every original row reads the memory; the trainable class token replaces the
/// backbone's. Masked (§3.2): original rows read only original rows (the pretrained outputs are untouched); the task row
/// reads the originals, itself and its memory. The head reads the final-norm task row (row 0 plain, row N masked).
/// Model extension (Table 1): a masked task trained on top of earlier masked tasks (frozen) — their class-token rows come first
/// after the originals, each reading the originals, the task rows up to itself and those tasks' memories, as in the multi-task
/// pass; this task's row, last, reads all of them.
/// With query tokens (VQT composed with memory, Tu et al. §4.4): T more stream rows that only read the N memory-adapted tokens;
/// before block l they are overwritten with layer l's queries and after it their outputs are collected, and the head reads
/// the VQT features [normalised class token | normalised query outputs of every layer].
/// </remarks>
public sealed class AdaptedVit : ITunedModel
{
    public VisionTransformer Backbone { get; }
    public int MemoryTokens { get; }
    public bool Masked { get; }
    public bool TrainClassToken { get; }
    public bool FullFineTune { get; }
    public int NumClasses { get; }
    /// <summary>VQT query tokens per layer composed with the memory (0: none).</summary>
    public int QueryTokens { get; }
    /// <summary>[L, T, D] or null.</summary>
    public Tensor? Queries { get; }
    /// <summary>Model extension: the frozen masked tasks this one reads (in training order), or empty.</summary>
    public IReadOnlyList<AdaptedVit> Extends { get; }

    /// <summary>[L, m, D] per-layer memory, or null when m = 0.</summary>
    public Tensor? Memory { get; }
    /// <summary>[1, 1, D] the task's class token (a copy of the backbone's at start), or null when it is not trained (plain variant).</summary>
    public Tensor? ClassToken { get; }
    /// <summary>[C, D] and [C]: the new head on the final-norm class token.</summary>
    public Tensor HeadWeight { get; }
    public Tensor HeadBias { get; }

    /// <summary>Everything the optimizer updates, with gradients.</summary>
    public IReadOnlyList<TrainableParameter> Parameters => _parameters;
    readonly List<TrainableParameter> _parameters = new();
    readonly Dictionary<string, BlockGrads> _blockGrads = new();

    VitConfig C => Backbone.Config;
    // Plain memory rides in the stream as the paper writes it: m rows after the original tokens, overwritten with the layer's
    // memory before each block and dropped after it, so the original rows read one contiguous run of keys (N + m).
    // The masked variant keeps memory as a separate key/value set, computed once per step, as the multi-task pass does.
    int MemoryRows => Masked ? 0 : MemoryTokens;
    int QueryRow0 => C.NumTokens + MemoryRows;
    int StreamRows => C.NumTokens + (Masked ? Extends.Count + 1 : 0) + MemoryRows + QueryTokens;
    int PooledRow => Masked ? C.NumTokens + Extends.Count : 0;
    int HeadInput => QueryTokens > 0 ? C.Dim * (1 + C.Depth * QueryTokens) : C.Dim;
    readonly QueryFeatures? _queryFeatures;

    public AdaptedVit(VisionTransformer backbone, int numClasses, int memoryTokens, bool masked, bool trainClassToken, bool fullFineTune, int seed, int queryTokens = 0,
        IReadOnlyList<AdaptedVit>? extends = null)
    {
        Extends = extends ?? [];
        if (Extends.Count > 0 && !masked) throw new ArgumentException("Model extension (reading earlier tasks' tokens) applies to the attention-masked variant.");
        if (Extends.Any(e => !e.Masked || e.Memory is null || e.Backbone != backbone)) throw new ArgumentException("A task extends masked memory tasks on the same backbone only.");
        if (queryTokens < 0) throw new ArgumentOutOfRangeException(nameof(queryTokens), queryTokens, "Query tokens cannot be negative.");
        if (queryTokens > 0 && (masked || fullFineTune)) throw new ArgumentException("Query tokens compose with plain memory tuning, not with the masked variant or full fine-tuning.");
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "A task needs at least one class.");
        if (memoryTokens < 0) throw new ArgumentOutOfRangeException(nameof(memoryTokens), memoryTokens, "Memory tokens cannot be negative.");
        if (masked && fullFineTune) throw new ArgumentException("The attention-masked variant keeps the backbone frozen; it cannot be combined with full fine-tuning.");
        Backbone = backbone; NumClasses = numClasses; MemoryTokens = memoryTokens; Masked = masked; FullFineTune = fullFineTune;
        TrainClassToken = trainClassToken || masked;   // a masked task always has its own class token
        var rng = new Random(seed);
        int d = C.Dim;
        if (memoryTokens > 0)
        {
            Memory = new Tensor([C.Depth, memoryTokens, d]);
            for (int i = 0; i < Memory.Length; i++) Memory.Data[i] = (float)(VisionTransformer.Gaussian(rng) * 0.02); // N(0, 0.02) as the paper
            Add("memory", Memory);
        }
        if (TrainClassToken && !fullFineTune)
        {
            ClassToken = Backbone.ClassToken.Clone();
            Add("cls_token", ClassToken);
        }
        QueryTokens = queryTokens;
        if (queryTokens > 0)
        {
            Queries = new Tensor([C.Depth, queryTokens, d]);
            double bound = Math.Sqrt(6.0 / (3.0 * C.PatchSize * C.PatchSize + d));   // VQT's init
            for (int i = 0; i < Queries.Length; i++) Queries.Data[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
            Add("queries", Queries);
            _queryFeatures = new QueryFeatures(d, C.Depth, queryTokens);
        }
        HeadWeight = new Tensor([numClasses, HeadInput]);
        HeadBias = new Tensor([numClasses]);
        // timm's reset_classifier: trunc-normal(0.02)-like weights, zero bias
        for (int i = 0; i < HeadWeight.Length; i++) HeadWeight.Data[i] = (float)Math.Clamp(VisionTransformer.Gaussian(rng) * 0.02, -0.04, 0.04);
        Add("head.weight", HeadWeight);
        Add("head.bias", HeadBias);
        if (fullFineTune)
        {
            foreach (var (name, t) in Backbone.Parameters)
                if (!name.StartsWith("head.", StringComparison.Ordinal)) Add("backbone." + name, t);
            foreach (var block in Backbone.Blocks) _blockGrads[$"blocks.{block.Index}."] = new BlockGrads(C);
        }
    }

    void Add(string name, Tensor t) => _parameters.Add(new TrainableParameter(name, t, new Tensor(t.Shape)));

    // ---------------------------------------------------------------- forward / backward

    sealed class Tape
    {
        public int Batch = -1;
        public float[] X = [], DX = [], Cols = [], Patches = [], Pooled = [], PooledLn = [], PooledMean = [], PooledRstd = [];
        public float[][] QueryOutputs = [];   // per layer [B, T·D]
        public BlockTape[] Blocks = [];
        public BackwardScratch Scratch = new();
    }
    Tape? _tape;
    bool _taped;

    AttentionGroup[] Groups()
    {
        int n = C.NumTokens;
        int[] mem = MemoryTokens > 0 ? [0] : [];
        if (!Masked)
        {
            var original = new AttentionGroup(0, n, [(0, n + MemoryRows)], []);
            return QueryTokens > 0 ? [original, new AttentionGroup(QueryRow0, QueryTokens, [(0, n)], [])] : [original];
        }
        // masked: the same segments as MultiTaskVit (extension mode: task k reads task rows n..n+k and memories 0..k), so a task
        // alone and in a multi-task pass give the same bits
        int tasks = Extends.Count + 1;
        var groups = new AttentionGroup[1 + tasks];
        groups[0] = new AttentionGroup(0, n, [(0, n)], []);
        for (int k = 0; k < tasks; k++) groups[1 + k] = new AttentionGroup(n + k, 1, [(0, n), (n, k + 1)], Enumerable.Range(0, k + 1).ToArray());
        return groups;
    }

    /// <summary>What the last block runs on: only the rows the head reads (the pooled row, and query rows when composed with VQT)
    /// go through that block's projection and MLP, and only they query (every row still gives keys/values). Exact: the other
    /// rows' outputs feed nothing.</summary>
    (AttentionGroup[] Groups, LiveRows Live) LastLayer(AttentionGroup[] groups)
    {
        int row = PooledRow;
        var live = QueryTokens > 0 ? new LiveRows((row, 1), (QueryRow0, QueryTokens)) : new LiveRows((row, 1));
        // the pooled row's group keeps only that query; query groups stay whole
        var trimmed = groups.Select(g => g.QueryStart <= row && row < g.QueryStart + g.Queries ? g with { QueryStart = row, Queries = 1 } : g)
            .Where(live.Holds).ToArray();
        return (trimmed, live);
    }

    /// <summary>The memory set block <paramref name="layer"/> reads as separate keys/values: the masked variant's only.</summary>
    ReadOnlyMemory<float>[] LayerMemory(int layer) =>
        Memory is null || !Masked ? [] : [.. Extends.Select(e => e.LayerMemory(layer)[^1]), Memory.Data.AsMemory(layer * MemoryTokens * C.Dim, MemoryTokens * C.Dim)];

    /// <summary>Logits [B, C] for normalised images [B, 3, H, W]. With <paramref name="keepForBackward"/> the activations are
    /// kept so that <see cref="Backward"/> can run next.</summary>
    public Tensor Forward(Tensor images, bool keepForBackward)
    {
        var c = C;
        if (images.Rank != 4 || images.Shape[1] != c.InChannels || images.Shape[2] != c.ImageSize || images.Shape[3] != c.ImageSize)
            throw new ArgumentException($"Images must be [B, {c.InChannels}, {c.ImageSize}, {c.ImageSize}], got {images.ShapeString}.");
        if (FullFineTune) Backbone.InvalidatePackedWeights();
        int batch = images.Shape[0], s = StreamRows, d = c.Dim, n = c.NumTokens, p = c.NumPatches;
        var t = _tape ??= new Tape();
        if (t.Batch != batch)
        {
            t.Batch = batch;
            t.X = new float[(long)batch * s * d];
            t.DX = new float[(long)batch * s * d];
            t.Cols = new float[(long)batch * p * c.InChannels * c.PatchSize * c.PatchSize];
            t.Patches = new float[(long)batch * p * d];
            t.Pooled = new float[batch * d]; t.PooledLn = new float[batch * d]; t.PooledMean = new float[batch]; t.PooledRstd = new float[batch];
            t.QueryOutputs = Enumerable.Range(0, c.Depth).Select(_ => new float[batch * QueryTokens * d]).ToArray();
            t.Blocks = Enumerable.Range(0, c.Depth).Select(_ => new BlockTape { Scratch = t.Scratch }).ToArray();
            t.Scratch.Ensure(c, (long)batch * s);
        }
        // embed: x[b, 0] = cls + pos[0]; x[b, 1+i] = patch_i Wᵀ + b + pos[1+i]; masked: x[b, N] = task cls + pos[0]
        PatchEmbed.Im2Col(t.Cols, images.Data, batch, c.InChannels, c.ImageSize, c.ImageSize, c.PatchSize);
        Linear.Forward(t.Patches, t.Cols, Backbone.PatchPacked, Backbone.PatchBias.Data, batch * p);
        var pos = Backbone.PosEmbed.Data.AsSpan();
        var streamCls = (ClassToken is not null && !Masked ? ClassToken : Backbone.ClassToken).Data;
        for (int b = 0; b < batch; b++)
        {
            var xb = t.X.AsSpan(b * s * d, s * d);
            TensorPrimitives.Add(streamCls, pos[..d], xb[..d]);
            TensorPrimitives.Add(t.Patches.AsSpan(b * p * d, p * d), pos[d..(n * d)], xb[d..(n * d)]);
            if (!Masked) continue;
            for (int k = 0; k < Extends.Count; k++) TensorPrimitives.Add(Extends[k].ClassToken!.Data, pos[..d], xb.Slice((n + k) * d, d));
            TensorPrimitives.Add(ClassToken!.Data, pos[..d], xb.Slice(PooledRow * d, d));
        }
        var groups = Groups();
        var last = LastLayer(groups);
        int qt = QueryTokens, qd = qt * d, q0 = QueryRow0, md = MemoryRows * d;
        for (int l = 0; l < c.Depth; l++)
        {
            // per-layer rows: layer l's memory and queries in (rows after the originals are never carried to the next layer)
            for (int b = 0; b < batch && md > 0; b++) Array.Copy(Memory!.Data, l * md, t.X, ((long)b * s + n) * d, md);
            for (int b = 0; b < batch && qt > 0; b++) Array.Copy(Queries!.Data, l * qd, t.X, ((long)b * s + q0) * d, qd);
            bool isLast = l == c.Depth - 1;
            Backbone.Blocks[l].Forward(t.X, batch, s, LayerMemory(l), isLast ? last.Groups : groups, t.Blocks[l], keepForBackward,
                weightGradients: FullFineTune && keepForBackward, live: isLast ? last.Live : null);
            for (int b = 0; b < batch && qt > 0; b++) Array.Copy(t.X, ((long)b * s + q0) * d, t.QueryOutputs[l], b * qd, qd);
        }
        // final norm on the pooled row only, then the head                     [B, D] (or VQT features [B, F]) → [B, C]
        for (int b = 0; b < batch; b++) Array.Copy(t.X, ((long)b * s + PooledRow) * d, t.Pooled, b * d, d);
        LayerNorm.Forward(t.PooledLn, t.PooledMean, t.PooledRstd, t.Pooled, Backbone.NormWeight.Data, Backbone.NormBias.Data, batch, d, c.LayerNormEps);
        var logits = new Tensor([batch, NumClasses]);
        var headIn = qt > 0 ? _queryFeatures!.Forward(t.PooledLn, t.QueryOutputs, batch) : t.PooledLn;
        Linear.Forward(logits.Data, headIn, HeadWeight.Data, HeadBias.Data, batch, HeadInput, NumClasses);
        _taped = keepForBackward;
        return logits;
    }

    /// <summary>Backward from dLoss/dLogits [B, C]: accumulates into every <see cref="TrainableParameter.Grad"/>.</summary>
    public void Backward(Tensor dLogits)
    {
        var t = _tape;
        if (t is null || !_taped) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        _taped = false;
        var c = C;
        int batch = t.Batch, s = StreamRows, d = c.Dim, n = c.NumTokens, p = c.NumPatches;
        if (dLogits.Rank != 2 || dLogits.Shape[0] != batch || dLogits.Shape[1] != NumClasses) throw new ArgumentException($"dLogits must be [{batch}, {NumClasses}].");
        var grad = _parameters.ToDictionary(x => x.Name, x => x.Grad.Data);
        int qt = QueryTokens, qd = qt * d;
        // forward: logits = H Whᵀ + bh (H = PooledLn, or the VQT features) → dH = dlogits Wh; dWh += dlogitsᵀ H; dbh += Σ dlogits
        var dPooledLn = new float[batch * d];
        var dHead = qt > 0 ? new float[batch * HeadInput] : dPooledLn;
        Linear.Backward(dHead, grad["head.weight"], grad["head.bias"], dLogits.Data, qt > 0 ? _queryFeatures!.Features : t.PooledLn, HeadWeight.Data, batch, HeadInput, NumClasses);
        if (qt > 0) _queryFeatures!.BackwardClassToken(dHead, dPooledLn);
        // forward: PooledLn = LN(Pooled)           → dPooled (final norm frozen unless full fine-tuning)
        var dPooled = new float[batch * d];
        LayerNorm.Backward(dPooled, FullFineTune ? grad["backbone.norm.weight"] : default, FullFineTune ? grad["backbone.norm.bias"] : default,
            dPooledLn, t.Pooled, Backbone.NormWeight.Data, t.PooledMean, t.PooledRstd, batch, d);
        // forward: Pooled = x[:, row]               → dx is zero but at the pooled row
        var dx = t.DX;
        Array.Clear(dx);
        for (int b = 0; b < batch; b++) Array.Copy(dPooled, b * d, dx, ((long)b * s + PooledRow) * d, d);
        var groups = Groups();
        var last = LastLayer(groups);
        var dMemory = Memory is null ? null : grad["memory"];
        var dOut = qt > 0 ? new float[batch * qd] : [];
        var dQueries = qt > 0 ? grad["queries"] : null;
        int q0 = QueryRow0, md = MemoryRows * d;
        for (int l = c.Depth - 1; l >= 0; l--)
        {
            Memory<float>[] dMem = dMemory is null || !Masked ? [] : [.. FrozenMemoryGrads(l), dMemory.AsMemory(l * MemoryTokens * d, MemoryTokens * d)];
            // per-layer rows: memory outputs are dropped (no gradient); query outputs get theirs from the head only
            for (int b = 0; b < batch && md > 0; b++) Array.Clear(dx, (b * s + n) * d, md);
            if (qt > 0)
            {
                _queryFeatures!.BackwardLayer(dHead, l, dOut);
                for (int b = 0; b < batch; b++) Array.Copy(dOut, b * qd, dx, ((long)b * s + q0) * d, qd);
            }
            var block = Backbone.Blocks[l];
            block.Backward(dx, batch, s, LayerMemory(l), l == c.Depth - 1 ? last.Groups : groups, t.Blocks[l], dMem, FullFineTune ? _blockGrads[$"blocks.{l}."] : null);
            // the gradient of layer l's memory and queries is what reached their input rows, summed over the batch
            for (int b = 0; b < batch && md > 0; b++)
            {
                var dm = dMemory.AsSpan(l * md, md);
                TensorPrimitives.Add(dm, dx.AsSpan((b * s + n) * d, md), dm);
            }
            for (int b = 0; b < batch && qt > 0; b++)
            {
                var dq = dQueries.AsSpan(l * qd, qd);
                TensorPrimitives.Add(dq, dx.AsSpan((b * s + q0) * d, qd), dq);
            }
        }
        if (FullFineTune) FlushBlockGrads(grad);
        // embedding: dcls, and with full fine-tuning dpos, dWpatch, dbpatch
        if (ClassToken is not null)
        {
            var dCls = grad["cls_token"].AsSpan();
            for (int b = 0; b < batch; b++) TensorPrimitives.Add(dCls, dx.AsSpan((b * s + PooledRow) * d, d), dCls);
        }
        if (FullFineTune)
        {
            var dCls = grad["backbone.cls_token"].AsSpan();
            var dPos = grad["backbone.pos_embed"].AsSpan();
            var dPatches = new float[(long)batch * p * d];
            for (int b = 0; b < batch; b++)
            {
                var xb = dx.AsSpan(b * s * d, n * d);
                TensorPrimitives.Add(dCls, xb[..d], dCls);
                TensorPrimitives.Add(dPos[..(n * d)], xb, dPos[..(n * d)]);
                xb[d..].CopyTo(dPatches.AsSpan(b * p * d, p * d));
            }
            int k = c.InChannels * c.PatchSize * c.PatchSize;
            Linear.Backward(default, grad["backbone.patch_embed.proj.weight"], grad["backbone.patch_embed.proj.bias"], dPatches, t.Cols, Backbone.PatchWeight.Data, batch * p, k, d);
        }
    }

    float[][] _frozenMemoryGrads = [];

    /// <summary>Where backward may put the gradients of the extended tasks' memory at one layer: they are frozen, so it is scratch.</summary>
    IEnumerable<Memory<float>> FrozenMemoryGrads(int layer)
    {
        if (_frozenMemoryGrads.Length != Extends.Count) _frozenMemoryGrads = Extends.Select(e => new float[e.MemoryTokens * C.Dim]).ToArray();
        return _frozenMemoryGrads.Select(g => g.AsMemory());
    }

    void FlushBlockGrads(Dictionary<string, float[]> grad)
    {
        foreach (var (prefix, bg) in _blockGrads)
            foreach (var (suffix, g) in bg.Named())
            {
                var dst = grad["backbone." + prefix + suffix].AsSpan();
                TensorPrimitives.Add(dst, g, dst);
                Array.Clear(g);
            }
    }
}
