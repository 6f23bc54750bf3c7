using MLNet.MemoryTokens.Training;

namespace MLNet.MemoryTokens.ML.Hosting;

/// <summary>Receives the engine's progress (synchronously, on the training thread), forwards it to the user's
/// <see cref="IProgress{T}"/>, writes it to the log (steps as Trace, epochs and notes as Info), and turns a cancelled
/// MLContext (AutoML's time budget) into a cancelled token the engine checks before every batch.</summary>
internal sealed class TrainingProgressRelay(ComponentLog log, IProgress<TrainingProgress>? user, Func<bool> contextCancelled, CancellationTokenSource cancel)
    : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress p)
    {
        user?.Report(p);
        if (p.Phase == "epoch")
        {
            var validation = p.ValidationAccuracy is double acc ? $", validation loss {p.ValidationLoss:F4}, accuracy {acc:P2}" : "";
            var stage = p.Message is null ? "" : $"{p.Message}: ";   // e.g. VQT's head retraining after compression
            log.Info($"{stage}epoch {p.Epoch}/{p.Epochs}: train loss {p.Loss:F4}{validation}, {p.ImagesPerSecond:F1} images/s");
        }
        else if (p.Message is not null) log.Info(p.Message);
        else
        {
            var stage = p.Phase == "train" ? "" : $"{p.Phase}: ";
            log.Trace($"{stage}epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.TotalSteps}: loss {p.Loss:F4}, {p.ImagesPerSecond:F1} images/s, ETA {p.Eta:hh\\:mm\\:ss}");
        }
        if (!cancel.IsCancellationRequested && contextCancelled()) cancel.Cancel();
    }
}
