using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>A training step whose trainable tensors live on a compute device (a GPU backend's): it supplies the optimizer that
/// clears, clips and updates them there, with the run's settings, so a step moves nothing between host and device but the
/// images, the logits and their gradient. The trainer's loop is otherwise the same; it asks the optimizer to copy the values
/// back before a checkpoint or the adapter reads them (<see cref="Optimizer.CopyParametersToHost"/>).</summary>
public interface IDeviceTrainingStep : ITrainingStep
{
    /// <summary>The optimizer of <see cref="ITrainingStep.Parameters"/> on the device: the engine's formulas, weight-decay rule
    /// and state names (so checkpoints move between backends).</summary>
    Optimizer CreateOptimizer(OptimizerKind kind, float weightDecay, float momentum);
}
