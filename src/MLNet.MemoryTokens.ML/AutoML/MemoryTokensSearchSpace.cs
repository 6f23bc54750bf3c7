using Microsoft.ML.SearchSpace;

namespace MLNet.MemoryTokens.ML;

/// <summary>The memory-token trainer's sweepable settings, for AutoML:
/// <c>mlContext.Auto().CreateSweepableEstimator((ctx, p) =&gt; ctx.MulticlassClassification.Trainers.MemoryTokens(p.ApplyTo(baseOptions)), new SearchSpace&lt;MemoryTokensSearchSpace&gt;())</c>.
/// The ranges are the attributes' (edit a <c>SearchSpace</c> to narrow them); the initial values are the trainer's defaults.</summary>
/// <remarks>Only the [Range] attributes (in Microsoft.ML) are used here; <c>SearchSpace&lt;T&gt;</c> and the experiment come from Microsoft.ML.AutoML.</remarks>
public sealed class MemoryTokensSearchSpace
{
    /// <summary>Memory tokens per layer: 1–32, initially 5.</summary>
    [Range(1, 32, init: 5, logBase: true)]
    public int MemoryTokens { get; set; } = 5;

    /// <summary>Peak learning rate: 1e-4–3e-2 (log scale), initially 1e-3.</summary>
    [Range(1e-4f, 3e-2f, init: 1e-3f, logBase: true)]
    public float LearningRate { get; set; } = 1e-3f;

    /// <summary>Epochs: 1–20, initially 10.</summary>
    [Range(1, 20, init: 10)]
    public int Epochs { get; set; } = 10;

    /// <summary>A copy of <paramref name="baseline"/> (columns, backbone, the rest of the schedule) with these values.</summary>
    public MemoryTokensTrainer.Options ApplyTo(MemoryTokensTrainer.Options baseline)
    {
        ArgumentNullException.ThrowIfNull(baseline);
        var options = (MemoryTokensTrainer.Options)baseline.Clone();
        options.MemoryTokens = MemoryTokens;
        options.LearningRate = LearningRate;
        options.Epochs = Epochs;
        return options;
    }
}
