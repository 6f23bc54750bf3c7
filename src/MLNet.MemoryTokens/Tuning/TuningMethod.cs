namespace MLNet.MemoryTokens.Tuning;

/// <summary>How a backbone is adapted to a new task.</summary>
public enum TuningMethod
{
    /// <summary>Linear probe on the final-norm class token; features computed once.</summary>
    HeadOnly,
    /// <summary>New head and the class token.</summary>
    HeadAndClassToken,
    /// <summary>Memory tokens per layer (Sandler et al. 2022), plus class token and head.</summary>
    Memory,
    /// <summary>Every weight, plus a new head.</summary>
    Full,
    /// <summary>Visual Query Tuning (Tu et al. 2023): query tokens per layer that only read; the backbone pass is cached.</summary>
    Vqt,
    /// <summary>VQT queries reading a memory-adapted stream: memory, class token, queries and head trained together.</summary>
    VqtMemory,
}

/// <summary>What to adapt: the method and its sizes.</summary>
public sealed record TuningOptions
{
    public TuningMethod Method { get; init; } = TuningMethod.Memory;
    /// <summary>Memory tokens per layer (m) for <see cref="TuningMethod.Memory"/>.</summary>
    public int MemoryTokens { get; init; } = 5;
    /// <summary>The attention-masked variant: the pretrained outputs stay exact and the adapter can join a multi-task pass.</summary>
    public bool Masked { get; init; }
    /// <summary>Model extension (the paper's Table 1; masked memory only): earlier masked adapters, in the order they were
    /// trained, whose class tokens and memory this task's class token also reads. They stay frozen.</summary>
    public IReadOnlyList<Adapter> Extends { get; init; } = [];
    /// <summary>Train the class token along with memory (the paper's default); ignored by the other methods.</summary>
    public bool TrainClassToken { get; init; } = true;
    /// <summary>VQT query tokens per layer (T).</summary>
    public int QueryTokens { get; init; } = 1;
    /// <summary>VQT dropout on the query tokens while training (0.1 in the official code).</summary>
    public float QueryDropout { get; init; } = 0.1f;
    /// <summary>Element type of the VQT key/value cache.</summary>
    public IO.TensorDType CacheDType { get; init; } = IO.TensorDType.F16;
    /// <summary>Largest VQT cache kept in memory; a larger one goes to a file.</summary>
    public long CacheBudgetBytes { get; init; } = 4L << 30;
    /// <summary>VQT group-lasso weight λ on the head's feature columns while training (0: off).</summary>
    public float GroupLasso { get; init; }
    /// <summary>VQT compression: keep this fraction of features (largest head columns) and retrain the head on them (1: keep all).</summary>
    public double KeepFeatureFraction { get; init; } = 1;
    /// <summary>Folder for a file-backed VQT cache (reused across runs when backbone, size and data match); null: memory within the budget, else the temp folder.</summary>
    public string? CacheDirectory { get; init; }

    public void Validate()
    {
        if (Method == TuningMethod.Memory && MemoryTokens < 1) throw new ArgumentOutOfRangeException(nameof(MemoryTokens), MemoryTokens, "Memory tuning needs at least one token per layer.");
        if (Masked && Method != TuningMethod.Memory) throw new ArgumentException($"The attention-masked variant applies to memory tuning, not {Method}.");
        if (Method == TuningMethod.VqtMemory && (MemoryTokens < 1 || Masked)) throw new ArgumentException("VQT + memory needs at least one (unmasked) memory token per layer.");
        if (Method is TuningMethod.Vqt or TuningMethod.VqtMemory && QueryTokens < 1) throw new ArgumentOutOfRangeException(nameof(QueryTokens), QueryTokens, "VQT needs at least one query token per layer.");
        if (GroupLasso < 0) throw new ArgumentOutOfRangeException(nameof(GroupLasso), GroupLasso, "Group-lasso weight cannot be negative.");
        if (!(KeepFeatureFraction > 0 && KeepFeatureFraction <= 1)) throw new ArgumentOutOfRangeException(nameof(KeepFeatureFraction), KeepFeatureFraction, "Keep a fraction of features in (0, 1].");
        if (KeepFeatureFraction < 1 && Method != TuningMethod.Vqt) throw new ArgumentException("Feature compression applies to VQT.");
        if (QueryDropout < 0 || QueryDropout >= 1) throw new ArgumentOutOfRangeException(nameof(QueryDropout), QueryDropout, "Query dropout must be in [0, 1).");
        if (Extends.Count > 0 && !(Method == TuningMethod.Memory && Masked)) throw new ArgumentException("Model extension (training on top of earlier adapters) applies to attention-masked memory tuning.");
        for (int k = 0; k < Extends.Count; k++)
        {
            var a = Extends[k];
            if (a.Config.Method != TuningMethod.Memory || !a.Config.Masked)
                throw new ArgumentException($"Adapter {a.Folder ?? $"#{k + 1}"} is not an attention-masked memory adapter: a task can only extend those.");
            // a chain: adapter k must itself have been trained on top of exactly the adapters before it
            if (!a.Config.Extends.Select(r => r.Fingerprint).SequenceEqual(Extends.Take(k).Select(e => e.Fingerprint)))
                throw new ArgumentException($"Adapter {a.Folder ?? $"#{k + 1}"} was trained on top of {a.Config.Extends.Length} adapter(s) that are not the {k} given before it: list the adapters in the order they were trained.");
        }
    }

    /// <summary>The frozen models of <see cref="Extends"/>, each built on the ones before it.</summary>
    IReadOnlyList<AdaptedVit> Earlier(Model.VisionTransformer backbone)
    {
        var models = new List<AdaptedVit>();
        foreach (var a in Extends) models.Add(a.Instantiate(backbone, models.ToArray()));
        return models;
    }

    /// <summary>The backbone with this method's trainable parts, freshly initialised (seeded) for <paramref name="classes"/> classes.</summary>
    public ITunedModel CreateModel(Model.VisionTransformer backbone, int classes, int seed) => Method switch
    {
        TuningMethod.Vqt => new QueryTuning.QueryTunedVit(backbone, classes, QueryTokens, QueryDropout, seed),
        TuningMethod.HeadOnly => new AdaptedVit(backbone, classes, 0, false, false, false, seed),
        TuningMethod.HeadAndClassToken => new AdaptedVit(backbone, classes, 0, false, true, false, seed),
        TuningMethod.Memory => new AdaptedVit(backbone, classes, MemoryTokens, Masked, TrainClassToken, false, seed, extends: Earlier(backbone)),
        TuningMethod.Full => new AdaptedVit(backbone.Clone(), classes, 0, false, false, true, seed),   // trains a copy: the given backbone stays as loaded
        TuningMethod.VqtMemory => new AdaptedVit(backbone, classes, MemoryTokens, false, TrainClassToken, false, seed, QueryTokens),
        _ => throw new ArgumentOutOfRangeException(nameof(Method)),
    };
}
