using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

/// <summary>VQT + memory tokens in the method table: <see cref="QueryMemoryVit"/>, trained on images.</summary>
internal sealed class QueryMemoryMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.VqtMemory;
    public override string Name => "vqt-memory";
    public override string Summary => "VQT query tokens reading a stream adapted by memory tokens; all trained together";
    public override IMethodCompute Managed => this;

    public override void Validate(TuningOptions o)
    {
        if (o.MemoryTokens < 1 || o.Masked) throw new ArgumentException("VQT + memory needs at least one (unmasked) memory token per layer.");
        if (o.QueryTokens < 1) throw new ArgumentOutOfRangeException(nameof(TuningOptions.QueryTokens), o.QueryTokens, "VQT needs at least one query token per layer.");
    }

    public override AdapterConfig DescribeAdapter(AdapterConfig config, TuningOptions o) => config with
    {
        MemoryTokens = o.MemoryTokens, TrainClassToken = o.TrainClassToken, QueryTokens = o.QueryTokens,
    };

    public override TuningOptions ReadAdapter(AdapterConfig c, IReadOnlyList<Adapter> extends) => new()
    {
        Method = Method, MemoryTokens = c.MemoryTokens, TrainClassToken = c.TrainClassToken, QueryTokens = c.QueryTokens,
    };

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) =>
        new QueryMemoryVit(backbone, classes, o.MemoryTokens, o.QueryTokens, o.TrainClassToken, seed);
}
