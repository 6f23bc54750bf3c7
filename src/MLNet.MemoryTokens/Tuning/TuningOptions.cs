using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>What to adapt: the method and its sizes. One bag for every method (each reads its own options, and refuses the
/// options another method owns); <see cref="TuningMethods"/> knows which method reads what.</summary>
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
    /// <summary>Train the class token along with memory (the paper's default); ignored by the other methods, and by a backbone
    /// without a class token (average pooling: nothing to train).</summary>
    public bool TrainClassToken { get; init; } = true;
    /// <summary>VQT query tokens per layer (T).</summary>
    public int QueryTokens { get; init; } = 1;
    /// <summary>VQT + memory: the query tokens read each layer's memory as well as the original tokens (keys/values as the
    /// original rows see them), as VQT's code composes with prompts — the default. False: the original tokens only (the
    /// composition before adapters recorded this; such adapters load with false).</summary>
    public bool QueriesReadMemory { get; init; } = true;
    /// <summary>VQT dropout on the query tokens while training (0.1 in the official code).</summary>
    public float QueryDropout { get; init; } = 0.1f;
    /// <summary>Element type of the VQT key/value cache.</summary>
    public TensorDType CacheDType { get; init; } = TensorDType.F16;
    /// <summary>Largest VQT cache kept in memory; a larger one goes to a file.</summary>
    public long CacheBudgetBytes { get; init; } = 4L << 30;
    /// <summary>VQT group-lasso weight λ on the head's feature columns while training (0: off).</summary>
    public float GroupLasso { get; init; }
    /// <summary>VQT compression: keep this fraction of features (largest head columns) and retrain the head on them (1: keep all).</summary>
    public double KeepFeatureFraction { get; init; } = 1;
    /// <summary>Folder for a file-backed VQT cache (reused across runs when backbone, size and data match); null: memory within the budget, else the temp folder.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Checks the values, then asks the method whether they fit it (and the other methods whether it uses options only they read).</summary>
    public void Validate()
    {
        Limits.Check("Memory tokens per layer", MemoryTokens, 0, Limits.MaxMemoryTokens);
        Limits.Check("Query tokens per layer", QueryTokens, 0, Limits.MaxQueryTokens);
        Limits.Check("The number of adapters extended", Extends.Count, 0, Limits.MaxTasks - 1);
        if (GroupLasso < 0) throw new ArgumentOutOfRangeException(nameof(GroupLasso), GroupLasso, "Group-lasso weight cannot be negative.");
        if (!(KeepFeatureFraction > 0 && KeepFeatureFraction <= 1)) throw new ArgumentOutOfRangeException(nameof(KeepFeatureFraction), KeepFeatureFraction, "Keep a fraction of features in (0, 1].");
        if (QueryDropout < 0 || QueryDropout >= 1) throw new ArgumentOutOfRangeException(nameof(QueryDropout), QueryDropout, "Query dropout must be in [0, 1).");
        var method = TuningMethods.Get(Method);
        foreach (var other in TuningMethods.All.Where(m => m != method))
            foreach (var owned in other.OwnedOptions)
                if (owned.IsSet(this)) throw new ArgumentException(owned.Refusal(this));
        method.Validate(this);
    }

    /// <summary><see cref="Validate()"/>, and the options against the backbone the run uses (e.g. the adapters an extension reads).</summary>
    public void Validate(Backbone backbone)
    {
        Validate();
        TuningMethods.Get(Method).Validate(this, backbone);
    }

    /// <summary>The backbone with this method's trainable parts, freshly initialised (seeded) for <paramref name="classes"/> classes.</summary>
    public ITunedModel CreateModel(VisionTransformer backbone, int classes, int seed) => TuningMethods.Compute(Method).CreateModel(backbone, this, classes, seed);
}
