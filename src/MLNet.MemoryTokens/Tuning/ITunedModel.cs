using MLNet.MemoryTokens.Data;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>A backbone with trainable adaptation parts: what the trainer, the evaluator and adapter files work with.</summary>
/// <remarks>One call at a time per instance: forward keeps its activations in buffers reused across calls (the backbone's own
/// <see cref="Model.VisionTransformer.Forward"/> is safe to call concurrently).</remarks>
public interface ITunedModel
{
    int NumClasses { get; }
    /// <summary>Everything the optimizer updates, with gradients.</summary>
    IReadOnlyList<TrainableParameter> Parameters { get; }
    /// <summary>Logits [B, C] of normalised images [B, 3, S, S]; with <paramref name="keepForBackward"/> ready for <see cref="Backward"/>.</summary>
    Tensor Forward(Tensor images, bool keepForBackward);
    /// <summary>Accumulates gradients of every parameter from dLoss/dLogits [B, C].</summary>
    void Backward(Tensor dLogits);
}

/// <summary>Helpers every tuned model shares.</summary>
public static class TunedModels
{
    public static long TrainableCount(this ITunedModel m) => m.Parameters.Sum(p => (long)p.Value.Length);

    public static void ZeroGrad(this ITunedModel m)
    {
        foreach (var p in m.Parameters) Array.Clear(p.Grad.Data);
    }

    /// <summary>Logits [N, C] of a model on prepared images, in batches (no activations kept).</summary>
    public static Tensor PredictLogits(this ITunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default)
    {
        var logits = new Tensor([data.Count, model.NumClasses]);
        for (int start = 0; start < data.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            var idx = Enumerable.Range(start, Math.Min(batchSize, data.Count - start)).ToArray();
            var l = model.Forward(data.Batch(idx), keepForBackward: false);
            l.Data.CopyTo(logits.Data, start * model.NumClasses);
        }
        return logits;
    }

    /// <summary>Checks a gradient of the logits against the last forward: [batch, classes].</summary>
    internal static void CheckLogitsGradient(Tensor dLogits, int batch, int classes)
    {
        if (dLogits.Rank != 2 || dLogits.Shape[0] != batch || dLogits.Shape[1] != classes) throw new ArgumentException($"dLogits must be [{batch}, {classes}].");
    }
}
