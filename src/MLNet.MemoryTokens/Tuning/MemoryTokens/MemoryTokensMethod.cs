using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

/// <summary>Memory tokens in the method table: plain, attention-masked (<see cref="TuningOptions.Masked"/>) and model extension
/// (<see cref="TuningOptions.Extends"/>); the model is <see cref="MemoryTokenVit"/>, trained on images.</summary>
internal sealed class MemoryTokensMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.Memory;
    public override string Name => "memory";
    public override string Summary => "memory tokens per layer, class token and head (--masked: the pretrained outputs stay exact)";
    public override IMethodCompute Managed => this;

    public override IEnumerable<OwnedOption> OwnedOptions =>
    [
        new(o => o.Masked, o => $"The attention-masked variant applies to memory tuning, not {o.Method}."),
        new(o => o.Extends.Count > 0, _ => ExtensionRefusal),
    ];

    const string ExtensionRefusal = "Model extension (training on top of earlier adapters) applies to attention-masked memory tuning.";

    public override void Validate(TuningOptions o)
    {
        if (o.MemoryTokens < 1) throw new ArgumentOutOfRangeException(nameof(TuningOptions.MemoryTokens), o.MemoryTokens, "Memory tuning needs at least one token per layer.");
        if (o.Extends.Count > 0 && !o.Masked) throw new ArgumentException(ExtensionRefusal);
        for (int k = 0; k < o.Extends.Count; k++)
        {
            var a = o.Extends[k];
            if (a.Config.Method != TuningMethod.Memory || !a.Config.Masked)
                throw new ArgumentException($"Adapter {a.Folder ?? $"#{k + 1}"} is not an attention-masked memory adapter: a task can only extend those.");
            // a chain: adapter k must itself have been trained on top of exactly the adapters before it
            if (!a.Config.Extends.Select(r => r.Fingerprint).SequenceEqual(o.Extends.Take(k).Select(e => e.Fingerprint)))
                throw new ArgumentException($"Adapter {a.Folder ?? $"#{k + 1}"} was trained on top of {a.Config.Extends.Length} adapter(s) that are not the {k} given before it: list the adapters in the order they were trained.");
        }
    }

    public override void Validate(TuningOptions o, Backbone backbone)
    {
        foreach (var a in o.Extends) a.EnsureMatches(backbone, a.Folder ?? "<extended adapter>");
    }

    public override AdapterConfig DescribeAdapter(AdapterConfig config, TuningOptions o) => config with
    {
        MemoryTokens = o.MemoryTokens, Masked = o.Masked, TrainClassToken = o.TrainClassToken || o.Masked,
        Extends = o.Extends.Select(a => new AdapterReference(a.Folder ?? "", a.Fingerprint)).ToArray(),
    };

    public override TuningOptions ReadAdapter(AdapterConfig c, IReadOnlyList<Adapter> extends) => new()
    {
        Method = Method, MemoryTokens = c.MemoryTokens, Masked = c.Masked, TrainClassToken = c.TrainClassToken, Extends = extends,
    };

    /// <summary>Plain: the memory joins each layer's keys/values, the trained class token (when there is one) row 0, the head
    /// reads the pooled output. Masked: a chain of task rows (the adapters it extends, then itself, each reading the ones
    /// before it and itself), the head on its own row.</summary>
    public override AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends)
    {
        var c = adapter.Config;
        int d = backbone.Dim;
        if (!c.Masked)
            return new()
            {
                ClassToken = adapter.Tensors.ContainsKey("cls_token") ? adapter.Need("cls_token", where, 1, 1, d) : null,
                StreamMemory = adapter.Need("memory", where, backbone.Depth, c.MemoryTokens, d),
            };
        var chain = extends.Append(adapter).Select((a, i) =>
        {
            string at = a == adapter ? where : a.Folder ?? $"{where} (extended adapter {i + 1})";
            return new MaskedTask($"extends{i}", a.Need("cls_token", at, 1, 1, d), a.Need("memory", at, backbone.Depth, a.Config.MemoryTokens, d), Enumerable.Range(0, i + 1).ToArray());
        }).ToArray();
        return new() { Tasks = chain, Head = HeadInput.TaskRow };
    }

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) =>
        new MemoryTokenVit(backbone, classes, new MemoryTokenOptions(o.MemoryTokens, o.Masked, o.TrainClassToken) { Extends = Frozen(backbone, o.Extends) }, seed);

    /// <summary>The adapters an extension reads, as frozen models, each built on the ones before it.</summary>
    internal static IReadOnlyList<MemoryTokenVit> Frozen(VisionTransformer backbone, IReadOnlyList<Adapter> adapters)
    {
        var models = new List<MemoryTokenVit>();
        foreach (var a in adapters)
        {
            var model = new MemoryTokenVit(backbone, a.Config.ClassLabels.Length, new MemoryTokenOptions(a.Config.MemoryTokens, Masked: true) { Extends = models.ToArray() }, seed: 0);
            a.CopyTo(model, a.Folder ?? "<adapter>");
            models.Add(model);
        }
        return models;
    }
}
