using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>Visual Query Tuning (Tu et al., CVPR 2023): per layer, T learnable query tokens read the layer's tokens and hand
/// their summaries to the head; the backbone's stream is never changed.</summary>
/// <remarks>
/// Layer l: a query row q (dropout in training) goes through block l with keys/values from the N original tokens only —
/// z = q + Proj(Attn(LN1(q), K_l, V_l)), out = z + MLP(LN2(z)) — so queries neither see each other nor are seen.
/// Head input [D·(1 + L·T)]: the L2-normalised final-norm class token, then for each layer the L2-normalised flattened
/// [T·D] query outputs. Since the stream does not depend on anything trained, K_l, V_l and the class token are computed
/// once per image (<see cref="CaptureKeyValues"/>) and training runs only the query paths (<see cref="ForwardCached"/>).
/// </remarks>
public sealed class QueryTunedVit : ITunedModel
{
    public VisionTransformer Backbone { get; }
    public int QueryTokens { get; }
    public float QueryDropout { get; }
    public int NumClasses { get; }
    /// <summary>[L, T, D]</summary>
    public Tensor Queries { get; }
    /// <summary>[C, D·(1 + L·T)] and [C]</summary>
    public Tensor HeadWeight { get; }
    public Tensor HeadBias { get; }
    public int FeatureDim => Backbone.Config.Dim * (1 + Backbone.Config.Depth * QueryTokens);

    public IReadOnlyList<TrainableParameter> Parameters => _parameters;
    readonly List<TrainableParameter> _parameters = new();
    readonly BlockTape[] _tapes;
    readonly Random _dropoutRng;
    VitConfig C => Backbone.Config;

    public QueryTunedVit(VisionTransformer backbone, int numClasses, int queryTokens, float queryDropout, int seed)
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "A task needs at least one class.");
        if (queryTokens < 1) throw new ArgumentOutOfRangeException(nameof(queryTokens), queryTokens, "VQT needs at least one query token per layer.");
        if (queryDropout < 0 || queryDropout >= 1) throw new ArgumentOutOfRangeException(nameof(queryDropout), queryDropout, "Query dropout must be in [0, 1).");
        Backbone = backbone; NumClasses = numClasses; QueryTokens = queryTokens; QueryDropout = queryDropout;
        var rng = new Random(seed);
        int d = C.Dim;
        Queries = new Tensor([C.Depth, queryTokens, d]);
        // as the official code: uniform(±sqrt(6 / (3·p² + D)))
        double bound = Math.Sqrt(6.0 / (3.0 * C.PatchSize * C.PatchSize + d));
        for (int i = 0; i < Queries.Length; i++) Queries.Data[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        HeadWeight = new Tensor([numClasses, FeatureDim]);
        HeadBias = new Tensor([numClasses]);
        for (int i = 0; i < HeadWeight.Length; i++) HeadWeight.Data[i] = (float)Math.Clamp(VisionTransformer.Gaussian(rng) * 0.02, -0.04, 0.04);
        _parameters.Add(new TrainableParameter("queries", Queries, new Tensor(Queries.Shape)));
        _parameters.Add(new TrainableParameter("head.weight", HeadWeight, new Tensor(HeadWeight.Shape)));
        _parameters.Add(new TrainableParameter("head.bias", HeadBias, new Tensor(HeadBias.Shape)));
        var scratch = new BackwardScratch();   // blocks run backward one at a time: one scratch serves all
        _tapes = Enumerable.Range(0, C.Depth).Select(_ => new BlockTape { Scratch = scratch }).ToArray();
        _dropoutRng = new Random(HashCode.Combine(seed, 0xd209));
    }

    /// <summary>What the frozen backbone gives VQT for a batch: per layer the original tokens' keys and values
    /// [B, N, 2D] (pinned, k then v in each row) and the final-norm class token [B, D].</summary>
    public sealed record KeyValues(float[][] PerLayer, float[] ClassToken, int Batch, int Tokens);

    KeyValues? _captured;

    /// <summary>Runs the frozen backbone once and keeps what VQT reads from it. The arrays are reused by the next call.</summary>
    public KeyValues CaptureKeyValues(Tensor images)
    {
        int batch = images.Shape[0], n = C.NumTokens, d = C.Dim;
        if (_captured is null || _captured.Batch != batch)
            _captured = new KeyValues(Enumerable.Range(0, C.Depth).Select(_ => GC.AllocateUninitializedArray<float>(batch * n * 2 * d, pinned: true)).ToArray(),
                new float[batch * d], batch, n);
        var perLayer = _captured.PerLayer;
        var features = Backbone.ForwardFeatures(images, (layer, qkv) =>
        {
            var kv = perLayer[layer];
            for (long r = 0; r < (long)batch * n; r++) Array.Copy(qkv, r * 3 * d + d, kv, r * 2 * d, 2 * d);
        });
        for (int b = 0; b < batch; b++) Array.Copy(features.Data, (long)b * n * d, _captured.ClassToken, b * d, d);
        return _captured;
    }

    // what backward needs from the last training forward
    KeyValues? _kv;
    float[] _x = [], _masks = [];
    float[][] _outputs = [];
    bool _taped;
    QueryFeatures? _head;

    public Tensor Forward(Tensor images, bool keepForBackward) => ForwardCached(CaptureKeyValues(images), keepForBackward);

    /// <summary>The query paths and head from captured (or cached) keys/values: logits [B, C].</summary>
    public Tensor ForwardCached(KeyValues kv, bool keepForBackward)
    {
        int batch = kv.Batch, t = QueryTokens, d = C.Dim, L = C.Depth, f = FeatureDim;
        if (kv.Tokens != C.NumTokens || kv.PerLayer.Length != L) throw new ArgumentException($"Keys/values are for {kv.Tokens} tokens and {kv.PerLayer.Length} layers; the backbone has {C.NumTokens} and {L}.");
        bool dropout = keepForBackward && QueryDropout > 0;
        if (_outputs.Length != L || _outputs[0].Length != batch * t * d)
        {
            _outputs = Enumerable.Range(0, L).Select(_ => new float[batch * t * d]).ToArray();
            _x = new float[batch * t * d];
            _masks = new float[L * batch * t * d];
        }
        var groups = new[] { new AttentionGroup(0, t, [], [], ReadsExternal: true) };
        for (int l = 0; l < L; l++)
        {
            // block input: the layer's queries for every sample (inverted dropout while training)
            var q = Queries.Data.AsSpan(l * t * d, t * d);
            var mask = _masks.AsSpan(l * batch * t * d, batch * t * d);
            for (int b = 0; b < batch; b++)
            {
                var xb = _outputs[l].AsSpan(b * t * d, t * d);
                if (!dropout) { q.CopyTo(xb); continue; }
                var mb = mask.Slice(b * t * d, t * d);
                float keep = 1f / (1f - QueryDropout);
                for (int i = 0; i < mb.Length; i++) mb[i] = _dropoutRng.NextSingle() < QueryDropout ? 0f : keep;
                TensorPrimitives.Multiply(q, mb, xb);
            }
            // z = q + Proj(Attn(LN1(q), K_l, V_l)); out = z + MLP(LN2(z)), in place in _outputs[l]
            Backbone.Blocks[l].Forward(_outputs[l], batch, t, [], groups, _tapes[l], keepForBackward, new ExternalKeyValues(kv.PerLayer[l], kv.Tokens));
        }
        // features [B, F]: normalise(cls) | normalise(out_1 flattened) | ... | normalise(out_L flattened)
        _head ??= new QueryFeatures(d, L, t);
        var features = _head.Forward(kv.ClassToken, _outputs, batch);
        var logits = new Tensor([batch, NumClasses]);
        Linear.Forward(logits.Data, features, HeadWeight.Data, HeadBias.Data, batch, f, NumClasses);
        _kv = kv; _taped = keepForBackward;
        return logits;
    }

    /// <summary>The aggregated VQT feature vector [B, D·(1 + L·T)] of the last forward (what the head reads).</summary>
    public Tensor LastFeatures(int batch) => new([batch, FeatureDim], _head!.Features.AsSpan(0, batch * FeatureDim).ToArray());

    public void Backward(Tensor dLogits)
    {
        if (!_taped || _kv is null) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        _taped = false;
        var kv = _kv;
        int batch = kv.Batch, t = QueryTokens, d = C.Dim, L = C.Depth, f = FeatureDim;
        var g = _parameters.ToDictionary(p => p.Name, p => p.Grad.Data);
        // forward: logits = F Whᵀ + bh              → dF = dlogits Wh; dWh += dlogitsᵀ F; dbh += Σ dlogits
        var dF = new float[batch * f];
        Linear.Backward(dF, g["head.weight"], g["head.bias"], dLogits.Data, _head!.Features, HeadWeight.Data, batch, f, NumClasses);
        var groups = new[] { new AttentionGroup(0, t, [], [], ReadsExternal: true) };
        var dQueries = g["queries"];
        for (int l = L - 1; l >= 0; l--)
        {
            // forward: F_l = out_l / ‖out_l‖            → dout_l = (dF_l − F_l (F_l·dF_l)) / ‖out_l‖
            _head.BackwardLayer(dF, l, _x);
            // through block l's query path (keys/values frozen) → gradient of its input, the (dropped-out) queries
            Backbone.Blocks[l].Backward(_x, batch, t, [], groups, _tapes[l], [], null, new ExternalKeyValues(kv.PerLayer[l], kv.Tokens));
            var dq = dQueries.AsSpan(l * t * d, t * d);
            for (int b = 0; b < batch; b++)
            {
                var dx = _x.AsSpan(b * t * d, t * d);
                if (QueryDropout > 0) TensorPrimitives.Multiply(dx, _masks.AsSpan((l * batch + b) * t * d, t * d), dx);
                TensorPrimitives.Add(dq, dx, dq);
            }
        }
    }
}
