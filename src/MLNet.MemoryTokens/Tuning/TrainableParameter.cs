namespace MLNet.MemoryTokens.Tuning;

/// <summary>A named trainable tensor and its gradient (accumulated by backward, cleared by the trainer).</summary>
public sealed record TrainableParameter(string Name, Tensor Value, Tensor Grad)
{
    /// <summary>A parameter with a fresh zero gradient of its shape.</summary>
    public TrainableParameter(string name, Tensor value) : this(name, value, new Tensor(value.Shape)) { }

    /// <summary>Whether weight decay applies: to weight matrices (rank ≥ 2) by default; a method turns it off for what timm
    /// keeps out of decay — tokens (class token, memory, queries) and the position embedding.</summary>
    public bool WeightDecay { get; init; } = Value.Rank >= 2;
}
