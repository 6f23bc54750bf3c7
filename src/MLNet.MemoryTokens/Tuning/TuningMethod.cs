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
}

/// <summary>What to adapt: the method and its sizes.</summary>
public sealed record TuningOptions
{
    public TuningMethod Method { get; init; } = TuningMethod.Memory;
    /// <summary>Memory tokens per layer (m) for <see cref="TuningMethod.Memory"/>.</summary>
    public int MemoryTokens { get; init; } = 5;
    /// <summary>The attention-masked variant: the pretrained outputs stay exact and the adapter can join a multi-task pass.</summary>
    public bool Masked { get; init; }
    /// <summary>Train the class token along with memory (the paper's default); ignored by the other methods.</summary>
    public bool TrainClassToken { get; init; } = true;

    public void Validate()
    {
        if (Method == TuningMethod.Memory && MemoryTokens < 1) throw new ArgumentOutOfRangeException(nameof(MemoryTokens), MemoryTokens, "Memory tuning needs at least one token per layer.");
        if (Masked && Method != TuningMethod.Memory) throw new ArgumentException($"The attention-masked variant applies to memory tuning, not {Method}.");
    }

    /// <summary>The backbone with this method's trainable parts, freshly initialised (seeded) for <paramref name="classes"/> classes.</summary>
    public AdaptedVit CreateModel(Model.VisionTransformer backbone, int classes, int seed) => Method switch
    {
        TuningMethod.HeadOnly => new AdaptedVit(backbone, classes, 0, false, false, false, seed),
        TuningMethod.HeadAndClassToken => new AdaptedVit(backbone, classes, 0, false, true, false, seed),
        TuningMethod.Memory => new AdaptedVit(backbone, classes, MemoryTokens, Masked, TrainClassToken, false, seed),
        TuningMethod.Full => new AdaptedVit(backbone, classes, 0, false, false, true, seed),
        _ => throw new ArgumentOutOfRangeException(nameof(Method)),
    };
}
