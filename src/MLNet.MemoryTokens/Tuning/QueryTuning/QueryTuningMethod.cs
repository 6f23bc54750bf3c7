using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>Visual Query Tuning in the method table: <see cref="QueryTunedVit"/>, trained from a key/value cache
/// (<see cref="QueryCacheStep"/>), optionally compressed (<see cref="TuningOptions.KeepFeatureFraction"/>, which only VQT reads).</summary>
internal sealed class QueryTuningMethod : TuningMethodDefinition, IMethodCompute
{
    const string KeptFeatures = "kept_features";

    public override TuningMethod Method => TuningMethod.Vqt;
    public override string Name => "vqt";
    public override string Summary => "query tokens per layer that only read the frozen backbone (its keys/values cached), and a head on their outputs";
    public override IMethodCompute Managed => this;

    public override IEnumerable<OwnedOption> OwnedOptions => [new(o => o.KeepFeatureFraction < 1, _ => "Feature compression applies to VQT.")];

    public override void Validate(TuningOptions o)
    {
        if (o.QueryTokens < 1) throw new ArgumentOutOfRangeException(nameof(TuningOptions.QueryTokens), o.QueryTokens, "VQT needs at least one query token per layer.");
    }

    public override AdapterConfig DescribeAdapter(AdapterConfig config, TuningOptions o) => config with { QueryTokens = o.QueryTokens, QueryDropout = o.QueryDropout };

    public override TuningOptions ReadAdapter(AdapterConfig c, IReadOnlyList<Adapter> extends) => new()
    {
        Method = Method, QueryTokens = c.QueryTokens, QueryDropout = c.QueryDropout,
    };

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) => new QueryTunedVit(backbone, classes, o.QueryTokens, o.QueryDropout, seed);

    /// <summary>The query tokens read each layer; the head reads the VQT features (or the kept ones of a compressed head).</summary>
    public override AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends) => new()
    {
        Queries = adapter.Need("queries", where, backbone.Depth, adapter.Config.QueryTokens, backbone.Dim), Head = HeadInput.QueryFeatures,
        KeptFeatures = Kept(adapter, where, backbone.Dim * (1 + backbone.Depth * adapter.Config.QueryTokens)),
    };

    /// <summary>The kept feature indices an adapter of a compressed head holds, checked, or null.</summary>
    internal static int[]? Kept(Adapter adapter, string where, int features)
    {
        if (!adapter.Tensors.TryGetValue(KeptFeatures, out var k)) return null;
        var kept = k.Data.Select(v => (int)v).ToArray();
        if (kept.Length == 0 || kept.Any(j => (uint)j >= (uint)features) || kept.Zip(kept.Skip(1)).Any(p => p.First >= p.Second))
            throw new InvalidDataException($"Adapter '{where}': {KeptFeatures} must be ascending indices within [0, {features}).");
        return kept;
    }

    public ITrainingStep CreateTrainingStep(ITunedModel model, StepContext context) => new QueryCacheStep((QueryTunedVit)model, context);

    /// <summary>A compressed head reads only some features: their indices ride along in the adapter.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> AdapterExtras(ITunedModel model) =>
        model is QueryTunedVit { KeptFeatures: { } kept } ? [new(KeptFeatures, new Tensor([kept.Length], kept.Select(i => (float)i).ToArray()))] : [];

    public void PrepareForAdapter(ITunedModel model, IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (tensors.TryGetValue(KeptFeatures, out var kept)) ((QueryTunedVit)model).SetKeptFeatures(kept.Data.Select(v => (int)v).ToArray());
    }
}
