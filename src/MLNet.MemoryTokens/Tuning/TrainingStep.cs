using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>How a method trains one batch: its logits for some training images and the gradients sent back from them. The
/// trainer owns everything around it (shuffling, loss, clipping, the optimizer, schedules, checkpoints); a method whose
/// inputs can be cached (VQT's keys/values, the linear probe's features) does so here.</summary>
public interface ITrainingStep : IDisposable
{
    /// <summary>What this step trains: the optimizer's parameters.</summary>
    IReadOnlyList<TrainableParameter> Parameters { get; }

    /// <summary>Logits [B, C] of training images <paramref name="indices"/>, ready for <see cref="Backward"/>.</summary>
    Tensor Forward(int[] indices);

    /// <summary>Accumulates the parameters' gradients from dLoss/dLogits [B, C] (cleared by the trainer before), the method's
    /// own regulariser included.</summary>
    void Backward(Tensor dLogits);

    /// <summary>Logits [N·C] of a validation set as this step's model sees it.</summary>
    float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel);

    /// <summary>A further phase to train once this one is done (VQT compression retrains its head on the kept features), or null.</summary>
    TrainingPhase? NextPhase() => null;

    void IDisposable.Dispose() { }
}

/// <summary>A phase of training: its name in progress reports, and the step it trains with (from epoch 1, a fresh optimizer).</summary>
public sealed record TrainingPhase(string Name, ITrainingStep Step);

/// <summary>What a method's training step is given: the backbone, the prepared training images, the options, and where to
/// report its own progress.</summary>
public sealed record StepContext(Backbone Backbone, PreparedImages Images, TuningOptions Tuning, int BatchSize, CancellationToken Cancel, Action<StepNotice>? Notify = null)
{
    public void Report(StepNotice notice) => Notify?.Invoke(notice);
}

/// <summary>A line of a method's own progress (filling a cache, computing features, compressing), which the trainer forwards.</summary>
/// <param name="AfterTraining">Reported once the training epochs are over (rather than before the first).</param>
public sealed record StepNotice(string Phase, string Message, double ImagesPerSecond = 0, TimeSpan Eta = default, bool AfterTraining = false);

/// <summary>The plain step: the model's own forward and backward on the images.</summary>
public sealed class ImageStep(ITunedModel model, PreparedImages images) : ITrainingStep
{
    public IReadOnlyList<TrainableParameter> Parameters => model.Parameters;
    public Tensor Forward(int[] indices) => model.Forward(images.Batch(indices), keepForBackward: true);
    public void Backward(Tensor dLogits) => model.Backward(dLogits);
    public float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel) => model.PredictLogits(data, batchSize, cancel).Data;
}

/// <summary>A linear head trained on fixed features [N, K]: the linear probe on the backbone's class tokens, and VQT's head
/// retrained on the features it kept.</summary>
/// <param name="featuresOf">The same features of other images (validation): [N, K].</param>
public sealed class FixedFeatureStep(float[] features, int dim, Tensor weight, Tensor bias, IReadOnlyList<TrainableParameter> head,
    Func<PreparedImages, int, CancellationToken, float[]> featuresOf) : ITrainingStep
{
    float[] _batch = [];
    int _rows;
    int Classes => bias.Length;

    public IReadOnlyList<TrainableParameter> Parameters => head;

    public Tensor Forward(int[] indices)
    {
        _rows = indices.Length;
        if (_batch.Length < _rows * dim) _batch = new float[_rows * dim];
        for (int i = 0; i < _rows; i++) Array.Copy(features, (long)indices[i] * dim, _batch, (long)i * dim, dim);
        var logits = new Tensor([_rows, Classes]);
        Linear.Forward(logits.Data, _batch.AsSpan(0, _rows * dim), weight.Data, bias.Data, _rows, dim, Classes);
        return logits;
    }

    public void Backward(Tensor dLogits) =>
        Linear.Backward(default, head[0].Grad.Data, head[1].Grad.Data, dLogits.Data, _batch.AsSpan(0, _rows * dim), weight.Data, _rows, dim, Classes);

    public float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel)
    {
        var logits = new float[data.Count * Classes];
        Linear.Forward(logits, featuresOf(data, batchSize, cancel), weight.Data, bias.Data, data.Count, dim, Classes);
        return logits;
    }
}
