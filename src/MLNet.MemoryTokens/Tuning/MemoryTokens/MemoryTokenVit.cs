using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

/// <summary>Memory tokens (Sandler et al., CVPR 2022), forward and backward: the frozen backbone with m learnable tokens per
/// layer that attention reads as extra keys and values, a class token and a new head — plain, attention-masked, and model
/// extension.</summary>
/// <remarks>
/// Legend: B batch, N original rows (class token, patches), m memory tokens per layer, L layers, D width, C classes, S stream
/// rows per sample (<see cref="Layout"/>).
/// Plain (§3.1): before block l, layer l's memory [m, D] is written into the m stream rows after the originals (concatenated to
/// the layer input, before the pre-attention LayerNorm); the original rows read all N + m rows; after the block the memory
/// rows are dropped (the next layer writes its own). The trained class token replaces the backbone's in row 0, and the head
/// reads what the backbone's pooling gives (<see cref="StreamPass.Pool"/>: the final-norm class token, a distilled model's class
/// and distillation tokens averaged, or the patch rows averaged with <c>fc_norm</c> — prefix and memory rows excluded); a
/// backbone without a class token (average pooling) trains no class token.
/// Masked (§3.2): the original rows read only each other, so the pretrained outputs stay exact; one more stream row, this
/// task's class token, reads the originals, itself and the memory — a key/value set of its own, normalised and projected once
/// per step for the whole batch; the head reads that row after the readout norm (<c>norm</c>, or <c>fc_norm</c>), whatever the
/// backbone's pooling: it is the task's only row. It starts as a copy of the backbone's class token, or N(0, 0.02) when the
/// backbone has none, and gets the class token's position when that has one.
/// Extension (Table 1): the frozen masked tasks this one was trained on top of sit after the originals, each reading as in
/// the multi-task pass (<see cref="MultiTaskVit"/>); this task's row comes last and reads all of them and their memory.
/// </remarks>
public sealed class MemoryTokenVit : ITunedModel
{
    public VisionTransformer Backbone { get; }
    public MemoryTokenOptions Options { get; }
    public int NumClasses { get; }
    /// <summary>m: memory tokens per layer.</summary>
    public int MemoryTokens => Options.Tokens;
    public bool Masked => Options.Masked;
    /// <summary>The class token trains (always for a masked task: it has its own row; never on a backbone without one).</summary>
    public bool TrainClassToken => (Options.TrainClassToken && Backbone.Config.ClassToken) || Options.Masked;
    /// <summary>Model extension: the frozen masked tasks this one reads (in training order), or empty.</summary>
    public IReadOnlyList<MemoryTokenVit> Extends => Options.Extends;
    /// <summary>[L, m, D] per-layer memory, N(0, 0.02) at start as the paper.</summary>
    public Tensor Memory { get; }
    /// <summary>[1, 1, D] the task's class token (a copy of the backbone's at start), or null when it is not trained.</summary>
    public Tensor? ClassToken { get; }
    /// <summary>[C, D] and [C]: the new head on the final-norm class token.</summary>
    public Tensor HeadWeight { get; }
    public Tensor HeadBias { get; }
    /// <summary>Where each row of a sample sits: N originals, then (masked) one row per task, or (plain) the m memory rows.</summary>
    public StreamLayout Layout => _pass.Layout;

    public IReadOnlyList<TrainableParameter> Parameters { get; }
    readonly TrainableParameter _memory, _head, _headBias;
    readonly TrainableParameter? _classToken;

    readonly StreamPass _pass;
    readonly AttentionGroup[] _groups, _lastGroups;   // who reads what in blocks 0..L−2, and in the last block
    readonly LiveRows _lastLive;                      // the last block: only the row the head reads goes past attention
    float[][] _frozenMemoryGrads = [];                // per extended task [m_e, D]: where backward may put their (unused) gradients
    bool _taped;
    VitConfig C => Backbone.Config;
    /// <summary>The row a masked task's head reads: its own class-token row.</summary>
    int PooledRow => Layout.TaskRow(Extends.Count);

    public MemoryTokenVit(VisionTransformer backbone, int numClasses, MemoryTokenOptions options, int seed)
    {
        options.Validate(backbone);
        Backbone = backbone; NumClasses = numClasses; Options = options;
        var rng = new Random(seed);
        int d = C.Dim, m = options.Tokens;
        Memory = new Tensor([C.Depth, m, d]);
        InitMemory(Memory, rng);
        var parameters = new List<TrainableParameter> { (_memory = new TrainableParameter("memory", Memory) { WeightDecay = false }) };
        if (TrainClassToken)
        {
            ClassToken = backbone.ClassToken?.Clone() ?? InitTaskToken(d, rng);
            parameters.Add(_classToken = new TrainableParameter("cls_token", ClassToken) { WeightDecay = false });
        }
        (HeadWeight, HeadBias) = HeadInit.Create(numClasses, d, rng);
        parameters.Add(_head = new TrainableParameter("head.weight", HeadWeight));
        parameters.Add(_headBias = new TrainableParameter("head.bias", HeadBias));
        Parameters = parameters;
        _pass = new StreamPass(backbone, Masked ? StreamLayout.Of(C, taskRows: Extends.Count + 1) : StreamLayout.Of(C, memoryRows: m));
        _groups = Groups();
        _lastLive = Masked ? new LiveRows((PooledRow, 1)) : Layout.ReadoutRows(C);
        _lastGroups = _lastLive.Restrict(_groups);
    }

    /// <summary>A masked task's class token on a backbone without one: N(0, 0.02), as memory.</summary>
    static Tensor InitTaskToken(int d, Random rng)
    {
        var token = new Tensor([1, 1, d]);
        InitMemory(token, rng);
        return token;
    }

    /// <summary>Memory tokens' initialisation, N(0, 0.02) as the paper.</summary>
    internal static void InitMemory(Tensor memory, Random rng)
    {
        for (int i = 0; i < memory.Length; i++) memory.Data[i] = (float)(VisionTransformer.Gaussian(rng) * 0.02);
    }

    AttentionGroup[] Groups() =>
        // plain: every original row reads the originals and the memory rows right after them, one run of N + m keys;
        // masked: the tasks of an extension chain (the extended ones, then this one), as the multi-task pass runs them
        Masked ? MaskedGroups(Layout, MultiTaskMode.Extension) : [new AttentionGroup(0, Layout.Originals, [(0, Layout.Originals + MemoryTokens)], [])];

    /// <summary>Who reads what in the attention-masked variant, for a stream with one class-token row per task (a task alone,
    /// an extension chain, the multi-task pass): the originals read only each other; task t reads the originals and its own
    /// row and memory (concatenation), or also every earlier task's row and memory (extension). Original keys are always a
    /// segment of their own, so a task row sums its attention in the same order alone as in any pass.</summary>
    internal static AttentionGroup[] MaskedGroups(StreamLayout layout, MultiTaskMode mode)
    {
        int n = layout.Originals, tasks = layout.TaskRows;
        var groups = new AttentionGroup[1 + tasks];
        groups[0] = AttentionGroup.SelfAttention(n);
        for (int t = 0; t < tasks; t++)
            groups[1 + t] = mode == MultiTaskMode.Concatenation
                ? new AttentionGroup(layout.TaskRow(t), 1, [(0, n), (layout.TaskRow(t), 1)], [t])
                : new AttentionGroup(layout.TaskRow(t), 1, [(0, n), (layout.TaskRow0, t + 1)], Enumerable.Range(0, t + 1).ToArray());
        return groups;
    }

    /// <summary>Layer <paramref name="layer"/>'s memory [m, D].</summary>
    internal ReadOnlyMemory<float> LayerMemory(int layer) => Memory.Data.AsMemory(layer * MemoryTokens * C.Dim, MemoryTokens * C.Dim);

    /// <summary>The masked variant's key/value sets at one layer: the extended tasks' memories, then this task's.</summary>
    ReadOnlyMemory<float>[] MemorySets(int layer) => [.. Extends.Select(e => e.LayerMemory(layer)), LayerMemory(layer)];

    float[][] TaskClassTokens => [.. Extends.Select(e => e.ClassToken!.Data), ClassToken!.Data];

    /// <summary>Logits [B, C] for normalised images [B, 3, H, W]. With <paramref name="keepForBackward"/> the activations are
    /// kept so that <see cref="Backward"/> can run next.</summary>
    public Tensor Forward(Tensor images, bool keepForBackward)
    {
        int batch = C.CheckImages(images), L = C.Depth;
        var pass = _pass.Begin(batch);
        // x = [prefix tokens + pos | patches Wᵀ + b + pos | masked: each task's class token + pos[0]]       [B, S, D]
        // (plain: the trained class token in row 0; masked: the backbone's, and this task's in its own row)
        pass.Embed(images, Masked || ClassToken is null ? Backbone.ClassToken : ClassToken, Masked ? TaskClassTokens : null);
        for (int l = 0; l < L; l++)
        {
            bool last = l == L - 1;
            // plain: x[:, N:N+m] = memory_l (every sample), read as keys/values by the original rows, dropped after the block
            if (!Masked) pass.Broadcast(Layout.MemoryRow0, LayerMemory(l).Span);
            // masked: memory_l is a key/value set of its own: LN1 and qkv once for the batch, read only by the task rows
            pass.Block(l, last ? _lastGroups : _groups, Masked ? MemorySets(l) : [], keepForBackward, last ? _lastLive : null);
        }
        // logits = H Whᵀ + bh, H = LN(x[:, task row]) (masked) or the backbone's pooling of the stream (plain)  [B, D] → [B, C]
        var logits = new Tensor([batch, NumClasses]);
        Linear.Forward(logits.Data, Masked ? pass.FinalNorm(PooledRow) : pass.Pool(), HeadWeight.Data, HeadBias.Data, batch, C.Dim, NumClasses);
        _taped = keepForBackward;
        return logits;
    }

    /// <summary>Backward from dLoss/dLogits [B, C]: accumulates into every <see cref="TrainableParameter.Grad"/>.</summary>
    public void Backward(Tensor dLogits)
    {
        if (!_taped) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        _taped = false;
        var pass = _pass;
        int batch = pass.Batch, d = C.Dim, m = MemoryTokens, L = C.Depth;
        TunedModels.CheckLogitsGradient(dLogits, batch, NumClasses);
        // forward: logits = H Whᵀ + bh (H = the final-norm pooled row) → dH = dlogits Wh; dWh += dlogitsᵀ H; dbh += Σ dlogits
        var dPooled = new float[batch * d];
        Linear.Backward(dPooled, _head.Grad.Data, _headBias.Grad.Data, dLogits.Data, pass.Normed, HeadWeight.Data, batch, d, NumClasses);
        // forward: H = LN(x[:, task row]) or the pooling → dx: zero but at the pooled rows (the final norm is frozen)
        if (Masked) pass.FinalNormBackward(PooledRow, dPooled);
        else pass.PoolBackward(dPooled);
        var dMemory = _memory.Grad.Data;
        for (int l = L - 1; l >= 0; l--)
        {
            bool last = l == L - 1;
            // plain: the memory rows' block outputs were dropped, so no gradient comes from above
            if (!Masked) pass.ClearGradient(Layout.MemoryRow0, m);
            // masked: dmemory_l accumulates straight from attention (the extended tasks' memories are frozen: scratch)
            IReadOnlyList<Memory<float>> dSets = Masked ? [.. FrozenMemoryGrads(), dMemory.AsMemory(l * m * d, m * d)] : [];
            pass.BlockBackward(l, last ? _lastGroups : _groups, Masked ? MemorySets(l) : [], dSets);
            // plain: forward wrote memory_l into every sample → dmemory_l = Σ_b dx[b, N:N+m]
            if (!Masked) pass.SumGradient(Layout.MemoryRow0, m, dMemory.AsSpan(l * m * d, m * d));
        }
        // forward: x[b, row] = norm_pre(cls + pos[0])   → dcls = Σ_b dx[b, row], through norm_pre first (pre-norm models)
        pass.NormPreBackward();
        if (_classToken is not null) pass.SumGradient(Masked ? PooledRow : Layout.ClassTokenRow, 1, _classToken.Grad.Data);
    }

    IEnumerable<Memory<float>> FrozenMemoryGrads()
    {
        if (_frozenMemoryGrads.Length != Extends.Count) _frozenMemoryGrads = Extends.Select(e => new float[e.MemoryTokens * C.Dim]).ToArray();
        return _frozenMemoryGrads.Select(g => g.AsMemory());
    }
}
