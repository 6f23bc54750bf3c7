using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

/// <summary>VQT + memory tokens in the method table: <see cref="QueryMemoryVit"/>, trained on images.</summary>
internal sealed class QueryMemoryMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.VqtMemory;
    public override string Name => "vqt-memory";
    public override string Summary => "VQT query tokens reading a stream adapted by memory tokens (and the memory itself, unless --queries-skip-memory); all trained together";
    public override IMethodCompute Managed => this;

    public override IEnumerable<OwnedOption> OwnedOptions =>
        [new(o => !o.QueriesReadMemory, o => $"Queries skipping the memory (QueriesReadMemory = false) applies to VQT + memory, not {o.Method}.")];

    public override void Validate(TuningOptions o)
    {
        if (o.MemoryTokens < 1 || o.Masked) throw new ArgumentException("VQT + memory needs at least one (unmasked) memory token per layer.");
        if (o.QueryTokens < 1) throw new ArgumentOutOfRangeException(nameof(TuningOptions.QueryTokens), o.QueryTokens, "VQT needs at least one query token per layer.");
    }

    public override AdapterConfig DescribeAdapter(AdapterConfig config, TuningOptions o) => config with
    {
        MemoryTokens = o.MemoryTokens, TrainClassToken = o.TrainClassToken, QueryTokens = o.QueryTokens, QueriesReadMemory = o.QueriesReadMemory,
    };

    // an adapter without the field was written before it existed, when the queries read the original tokens only
    public override TuningOptions ReadAdapter(AdapterConfig c, IReadOnlyList<Adapter> extends) => new()
    {
        Method = Method, MemoryTokens = c.MemoryTokens, TrainClassToken = c.TrainClassToken, QueryTokens = c.QueryTokens,
        QueriesReadMemory = c.QueriesReadMemory ?? false,
    };

    /// <summary>Plain memory in the stream, the trained class token (when there is one), the query tokens (reading the memory
    /// too, as the adapter records); the head on the VQT features.</summary>
    public override AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends)
    {
        var c = adapter.Config;
        return new()
        {
            ClassToken = adapter.Tensors.ContainsKey("cls_token") ? adapter.Need("cls_token", where, 1, 1, backbone.Dim) : null,
            StreamMemory = adapter.Need("memory", where, backbone.Depth, c.MemoryTokens, backbone.Dim),
            Queries = adapter.Need("queries", where, backbone.Depth, c.QueryTokens, backbone.Dim), Head = HeadInput.QueryFeatures,
            QueriesReadMemory = ReadAdapter(c, extends).QueriesReadMemory,
        };
    }

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) =>
        new QueryMemoryVit(backbone, classes, o.MemoryTokens, o.QueryTokens, o.TrainClassToken, seed, o.QueriesReadMemory);
}
