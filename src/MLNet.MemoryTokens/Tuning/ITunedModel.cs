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
}
