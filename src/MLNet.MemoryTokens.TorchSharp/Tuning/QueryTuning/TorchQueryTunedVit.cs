using MLNet.MemoryTokens.TorchSharp.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using MLNet.MemoryTokens.TorchSharp.Tuning;

namespace MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;

/// <summary>Visual Query Tuning (Tu et al., CVPR 2023) on TorchSharp, mirroring the engine's <c>QueryTunedVit</c>: per layer, T
/// query rows read the original tokens' keys/values (never each other, never read) and go through projection and MLP; the
/// head reads [normalised pooled output (the final-norm class token, or the family's pooling) | normalised flattened query
/// outputs of each layer].</summary>
/// <remarks>The backbone never sees a gradient: <see cref="BackbonePass"/> runs it once under no_grad and hands over each layer's
/// keys/values [B, N, 2D] and the final-norm class token [B, D] — what <see cref="TorchKeyValueCache"/> keeps so later epochs run
/// only the query paths (<see cref="ForwardCached"/>).</remarks>
public sealed class TorchQueryTunedVit : TorchTunedModel
{
    public int QueryTokens { get; }
    public float QueryDropout { get; }
    public Parameter Queries { get; }      // [L, T, D]
    public Parameter HeadWeight { get; }   // [C, K]: K = D·(1 + L·T), or the kept features
    public Parameter HeadBias { get; }     // [C]
    /// <summary>Features the head reads after VQT compression (ascending), or null: all.</summary>
    public int[]? KeptFeatures { get; }
    public int FeatureDim => Backbone.Config.Dim * (1 + Backbone.Config.Depth * QueryTokens);

    readonly Generator _dropout;
    readonly torch.Tensor? _kept;

    /// <param name="initial">The engine's freshly initialised tensors (same seed, same values) or an adapter's.</param>
    /// <param name="dropoutSeed">Seeds the query-dropout masks (a LibTorch generator: the masks differ from the engine's .NET ones).</param>
    public TorchQueryTunedVit(TorchVit backbone, int numClasses, int queryTokens, float queryDropout, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> initial,
        int dropoutSeed, int[]? keptFeatures = null) : base(nameof(TorchQueryTunedVit), backbone, numClasses)
    {
        if (queryTokens < 1) throw new ArgumentOutOfRangeException(nameof(queryTokens), queryTokens, "VQT needs at least one query token per layer.");
        if (queryDropout < 0 || queryDropout >= 1) throw new ArgumentOutOfRangeException(nameof(queryDropout), queryDropout, "Query dropout must be in [0, 1).");
        QueryTokens = queryTokens; QueryDropout = queryDropout; KeptFeatures = keptFeatures;
        Queries = AddTrainable("queries", initial["queries"]);
        HeadWeight = AddTrainable("head.weight", initial["head.weight"]);
        HeadBias = AddTrainable("head.bias", initial["head.bias"]);
        _dropout = new Generator((ulong)dropoutSeed, Device);
        if (keptFeatures is not null)
        {
            if (keptFeatures.Length == 0 || keptFeatures.Any(j => (uint)j >= (uint)FeatureDim) || keptFeatures.Zip(keptFeatures.Skip(1)).Any(p => p.First >= p.Second))
                throw new ArgumentException($"Kept feature indices must be ascending and within [0, {FeatureDim}).");
            _kept = torch.tensor(keptFeatures.Select(i => (long)i).ToArray()).to(Device).DetachFromDisposeScope();
        }
    }

    public override Dictionary<string, MLNet.MemoryTokens.Tensor> AdapterTensors()
    {
        var t = base.AdapterTensors();
        if (KeptFeatures is not null) t["kept_features"] = new MLNet.MemoryTokens.Tensor([KeptFeatures.Length], KeptFeatures.Select(i => (float)i).ToArray());
        return t;
    }

    /// <summary>The frozen backbone once, under no_grad: per layer the original tokens' keys/values [B, N, 2D] (k | v) and the
    /// backbone's pooled output [B, D] (the final-norm class token, or the family's pooling).</summary>
    public (torch.Tensor[] KeyValues, torch.Tensor ClassToken) BackbonePass(torch.Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var kv = new torch.Tensor[Backbone.Config.Depth];
        var x = Backbone.Embed(images);
        for (int l = 0; l < kv.Length; l++)
        {
            int layer = l;
            x = Backbone.Blocks[l].Forward(x, null, null, Backbone.Precision, k => kv[layer] = k.contiguous().MoveToOuterDisposeScope());   // out of the block's scope into this one
        }
        var cls = Backbone.Pool(x);
        foreach (var t in kv) t.MoveToOuterDisposeScope();
        return (kv, scope.MoveToOuter(cls));
    }

    public override torch.Tensor Forward(torch.Tensor images, bool training)
    {
        using var scope = NewDisposeScope();
        var (kv, cls) = BackbonePass(images);
        return scope.MoveToOuter(ForwardCached(kv, cls, training));
    }

    /// <summary>The query paths and head from keys/values (float32, or the cache's F16/BF16) [L][B, N, 2D] and class tokens [B, D].</summary>
    public torch.Tensor ForwardCached(IReadOnlyList<torch.Tensor> keyValues, torch.Tensor classToken, bool training)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(HeadLinear(FeatureVectors(keyValues, classToken, training), HeadWeight, HeadBias));
    }

    /// <summary>The VQT feature vectors [B, K] of images (no dropout, no graph): what the head reads.</summary>
    public torch.Tensor Features(torch.Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (kv, cls) = BackbonePass(images);
        return scope.MoveToOuter(FeatureVectors(kv, cls, training: false));
    }

    /// <summary>[normalise(class token) | normalise(query outputs of layer 1, flattened) | … | layer L] [B, D·(1 + L·T)], or
    /// the kept features of a compressed head.</summary>
    torch.Tensor FeatureVectors(IReadOnlyList<torch.Tensor> keyValues, torch.Tensor classToken, bool training)
    {
        using var scope = NewDisposeScope();
        var c = Backbone.Config;
        long b = classToken.shape[0];
        var parts = new List<torch.Tensor> { F.normalize(classToken.to(ScalarType.Float32), 2, 1, 1e-12) };
        for (int l = 0; l < c.Depth; l++)
        {
            var q = Queries.select(0, l).unsqueeze(0).expand(b, QueryTokens, c.Dim);                        // [B, T, D]
            if (training && QueryDropout > 0)
            {
                // inverted dropout, one mask per (sample, query, channel) as the engine's
                var keep = torch.rand([b, QueryTokens, c.Dim], device: Device, generator: _dropout).ge(QueryDropout);
                q = q * keep.to(q.dtype) * (1f / (1f - QueryDropout));
            }
            var o = Backbone.Blocks[l].ForwardQueries(q, keyValues[l].to(Device), Backbone.Precision);       // [B, T, D]
            parts.Add(F.normalize(o.to(ScalarType.Float32).reshape(b, QueryTokens * c.Dim), 2, 1, 1e-12));
        }
        var features = cat(parts, 1);                                                                       // [B, D·(1 + L·T)]
        return scope.MoveToOuter(_kept is null ? features : features.index_select(1, _kept));
    }
}
