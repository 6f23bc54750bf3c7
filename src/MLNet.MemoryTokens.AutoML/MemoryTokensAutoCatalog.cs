using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.SearchSpace;
using MLNet.MemoryTokens.ML;

namespace MLNet.MemoryTokens.AutoML;

/// <summary>Our trainers as AutoML sweepable estimators: <c>mlContext.Auto().MemoryTokens(baseline)</c>.</summary>
public static class MemoryTokensAutoCatalog
{
    /// <summary>The memory-token trainer swept over <see cref="MemoryTokensSearchSpace"/> (memory tokens, learning rate,
    /// epochs); everything else (columns, backbone, batch, seed) comes from <paramref name="baseline"/>.</summary>
    /// <param name="space">The space to sweep; null: the attributes' ranges. Narrow it with <c>space["Epochs"] = new UniformIntOption(...)</c>.</param>
    /// <param name="onTrial">Called with each trial's values before its trainer is built (for logging).</param>
    public static SweepableEstimator MemoryTokens(this AutoCatalog auto, MemoryTokensTrainer.Options baseline,
        SearchSpace<MemoryTokensSearchSpace>? space = null, Action<MemoryTokensSearchSpace>? onTrial = null)
    {
        ArgumentNullException.ThrowIfNull(auto);
        ArgumentNullException.ThrowIfNull(baseline);
        return auto.CreateSweepableEstimator((context, p) =>
        {
            onTrial?.Invoke(p);
            return context.MulticlassClassification.Trainers.MemoryTokens(p.ApplyTo(baseline));
        }, space ?? new SearchSpace<MemoryTokensSearchSpace>());
    }
}
