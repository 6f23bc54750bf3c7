using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

/// <summary>VQT composed with memory tokens (Tu et al. 2023, §4.4), forward and backward: T query tokens per layer read a
/// stream that plain memory tokens adapt; memory, class token, queries and the VQT head train together.</summary>
/// <remarks>
/// Legend: B batch, N original rows, m memory and T query tokens per layer, L layers, D width, C classes.
/// Stream per sample (<see cref="Layout"/>): the N originals, layer l's m memory rows, layer l's T query rows — both written
/// before block l and read out (queries) or dropped (memory) after it. The original rows read the originals and the memory
/// (as <see cref="MemoryTokenVit"/>, plain). The query rows read every row of the layer's input except the queries
/// themselves — the N originals and the m memory rows, keys/values as the originals see them (LN1, then qkv) — as VQT's
/// code composes with prompts (its queries attend to <c>hidden_states[:, query_prompt_len:]</c>); with
/// <see cref="QueriesReadMemory"/> false they read the N originals only. The head reads the VQT features
/// [normalised pooled stream (the final-norm class token, or the backbone's pooling) | normalised query outputs of every
/// layer] (<see cref="QueryFeatures"/>). The memory's gradient comes from both readers: the original rows and the queries
/// (one stream, one backward).
/// </remarks>
public sealed class QueryMemoryVit : ITunedModel
{
    public VisionTransformer Backbone { get; }
    public int NumClasses { get; }
    public int MemoryTokens { get; }
    public int QueryTokens { get; }
    public bool TrainClassToken { get; }
    /// <summary>Whether the query rows read the layer's memory as well as the original tokens (true: VQT's own composition).</summary>
    public bool QueriesReadMemory { get; }
    /// <summary>[L, m, D]</summary>
    public Tensor Memory { get; }
    /// <summary>[1, 1, D] the trained class token, or null when it stays the backbone's.</summary>
    public Tensor? ClassToken { get; }
    /// <summary>[L, T, D]</summary>
    public Tensor Queries { get; }
    /// <summary>[C, D·(1 + L·T)] and [C]: the head on the VQT features.</summary>
    public Tensor HeadWeight { get; }
    public Tensor HeadBias { get; }
    public StreamLayout Layout => _pass.Layout;

    public IReadOnlyList<TrainableParameter> Parameters { get; }
    readonly TrainableParameter _memory, _queries, _head, _headBias;
    readonly TrainableParameter? _classToken;

    readonly StreamPass _pass;
    readonly QueryFeatures _features;
    readonly AttentionGroup[] _groups, _lastGroups;
    readonly LiveRows _lastLive;
    float[][] _queryOutputs = [];   // per layer [B, T·D]: the query rows after block l
    bool _taped;
    VitConfig C => Backbone.Config;
    int FeatureDim => _features.FeatureDim;

    public QueryMemoryVit(VisionTransformer backbone, int numClasses, int memoryTokens, int queryTokens, bool trainClassToken, int seed,
        bool queriesReadMemory = true)
    {
        if (memoryTokens < 1) throw new ArgumentOutOfRangeException(nameof(memoryTokens), memoryTokens, "VQT + memory needs at least one memory token per layer.");
        if (queryTokens < 1) throw new ArgumentOutOfRangeException(nameof(queryTokens), queryTokens, "VQT needs at least one query token per layer.");
        Backbone = backbone; NumClasses = numClasses; MemoryTokens = memoryTokens; QueryTokens = queryTokens; TrainClassToken = trainClassToken;
        QueriesReadMemory = queriesReadMemory;
        var rng = new Random(seed);
        int d = C.Dim;
        Memory = new Tensor([C.Depth, memoryTokens, d]);
        MemoryTokenVit.InitMemory(Memory, rng);
        var parameters = new List<TrainableParameter> { (_memory = new TrainableParameter("memory", Memory) { WeightDecay = false }) };
        if (trainClassToken && backbone.Config.ClassToken)
        {
            ClassToken = backbone.ClassToken!.Clone();
            parameters.Add(_classToken = new TrainableParameter("cls_token", ClassToken) { WeightDecay = false });
        }
        Queries = new Tensor([C.Depth, queryTokens, d]);
        QueryTunedVit.InitQueries(Queries, C, rng);
        parameters.Add(_queries = new TrainableParameter("queries", Queries) { WeightDecay = false });
        _features = new QueryFeatures(d, C.Depth, queryTokens);
        (HeadWeight, HeadBias) = HeadInit.Create(numClasses, _features.FeatureDim, rng);
        parameters.Add(_head = new TrainableParameter("head.weight", HeadWeight));
        parameters.Add(_headBias = new TrainableParameter("head.bias", HeadBias));
        Parameters = parameters;
        var layout = StreamLayout.Of(C, memoryRows: memoryTokens, queryRows: queryTokens);
        _pass = new StreamPass(backbone, layout);
        int n = layout.Originals;
        // the originals read the originals and the memory rows after them (one run of N + m keys); the queries read the same
        // N + m rows (or, skipping the memory, the originals only)
        _groups = [new AttentionGroup(0, n, [(0, n + memoryTokens)], []),
                   new AttentionGroup(layout.QueryRow0, queryTokens, [(0, queriesReadMemory ? n + memoryTokens : n)], [])];
        // the last block: only the rows the pooling reads and the query rows go past attention
        _lastLive = new LiveRows([.. layout.ReadoutRows(C).Ranges, (layout.QueryRow0, queryTokens)]);
        _lastGroups = _lastLive.Restrict(_groups);
    }

    ReadOnlySpan<float> LayerRows(Tensor t, int layer, int rows) => t.Data.AsSpan(layer * rows * C.Dim, rows * C.Dim);

    /// <summary>Logits [B, C] for normalised images [B, 3, H, W]; with <paramref name="keepForBackward"/> ready for <see cref="Backward"/>.</summary>
    public Tensor Forward(Tensor images, bool keepForBackward)
    {
        int batch = C.CheckImages(images), d = C.Dim, t = QueryTokens, L = C.Depth;
        var pass = _pass.Begin(batch);
        if (_queryOutputs.Length != L || _queryOutputs[0].Length != batch * t * d) _queryOutputs = Enumerable.Range(0, L).Select(_ => new float[batch * t * d]).ToArray();
        // x = [cls + pos[0] | patches Wᵀ + b + pos[1:] | memory rows | query rows]                         [B, S, D]
        pass.Embed(images, ClassToken ?? Backbone.ClassToken);
        for (int l = 0; l < L; l++)
        {
            bool last = l == L - 1;
            // layer l's tokens into every sample: memory (read by the originals and the queries, dropped after), queries (read out after)
            pass.Broadcast(Layout.MemoryRow0, LayerRows(Memory, l, MemoryTokens));
            pass.Broadcast(Layout.QueryRow0, LayerRows(Queries, l, t));
            pass.Block(l, last ? _lastGroups : _groups, [], keepForBackward, last ? _lastLive : null);
            pass.Read(Layout.QueryRow0, t, _queryOutputs[l]);
        }
        // F = [ĉ | ô_1 | … | ô_L] from the final-norm class token and the query outputs; logits = F Whᵀ + bh   [B, F] → [B, C]
        var features = _features.Forward(pass.Pool(), _queryOutputs, batch);
        var logits = new Tensor([batch, NumClasses]);
        Linear.Forward(logits.Data, features, HeadWeight.Data, HeadBias.Data, batch, FeatureDim, NumClasses);
        _taped = keepForBackward;
        return logits;
    }

    /// <summary>Backward from dLoss/dLogits [B, C]: accumulates into every <see cref="TrainableParameter.Grad"/>.</summary>
    public void Backward(Tensor dLogits)
    {
        if (!_taped) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        _taped = false;
        var pass = _pass;
        int batch = pass.Batch, d = C.Dim, m = MemoryTokens, t = QueryTokens, L = C.Depth;
        TunedModels.CheckLogitsGradient(dLogits, batch, NumClasses);
        // forward: logits = F Whᵀ + bh                   → dF = dlogits Wh; dWh += dlogitsᵀ F; dbh += Σ dlogits
        var dPooled = new float[batch * d];
        var dFeatures = new float[batch * FeatureDim];
        Linear.Backward(dFeatures, _head.Grad.Data, _headBias.Grad.Data, dLogits.Data, _features.Features, HeadWeight.Data, batch, FeatureDim, NumClasses);
        // forward: ĉ = c / ‖c‖, c = LN(x[:, 0])          → dc, then through the final norm into dx (zero elsewhere)
        _features.BackwardClassToken(dFeatures, dPooled);
        pass.PoolBackward(dPooled);
        var (dMemory, dQueries) = (_memory.Grad.Data, _queries.Grad.Data);
        var dOut = new float[batch * t * d];
        for (int l = L - 1; l >= 0; l--)
        {
            bool last = l == L - 1;
            // memory outputs were dropped (no gradient); query outputs get theirs from the head only: dô_l → dout_l
            pass.ClearGradient(Layout.MemoryRow0, m);
            _features.BackwardLayer(dFeatures, l, dOut);
            pass.WriteGradient(Layout.QueryRow0, t, dOut);
            pass.BlockBackward(l, last ? _lastGroups : _groups, [], []);
            // forward wrote memory_l and queries_l into every sample → their gradients are Σ_b over those rows (the memory rows'
            // from every row that read them: originals and, by default, queries)
            pass.SumGradient(Layout.MemoryRow0, m, dMemory.AsSpan(l * m * d, m * d));
            pass.SumGradient(Layout.QueryRow0, t, dQueries.AsSpan(l * t * d, t * d));
        }
        // forward: x[b, 0] = cls + pos[0]                → dcls = Σ_b dx[b, 0]
        pass.NormPreBackward();
        if (_classToken is not null) pass.SumGradient(Layout.ClassTokenRow, 1, _classToken.Grad.Data);
    }
}
