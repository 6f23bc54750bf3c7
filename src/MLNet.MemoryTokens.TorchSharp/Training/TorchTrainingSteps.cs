using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Training;

/// <summary>What every TorchSharp training step shares: the engine's trainer runs it (loss, clipping, schedule, checkpoints,
/// progress are the trainer's), and its optimizer is a <see cref="TorchOptimizer"/> on the device.</summary>
public abstract class TorchTrainingStep(TorchEngineModel model) : IDeviceTrainingStep
{
    protected TorchEngineModel Model { get; } = model;
    public IReadOnlyList<TrainableParameter> Parameters => Model.Parameters;
    public abstract MLNet.MemoryTokens.Tensor Forward(int[] indices);
    public void Backward(MLNet.MemoryTokens.Tensor dLogits) => Model.Backward(dLogits);
    public abstract float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel);
    public Optimizer CreateOptimizer(OptimizerKind kind, float weightDecay, float momentum) => TorchOptimizer.Create(kind, Model, weightDecay, momentum);
    public virtual void Dispose() => GC.SuppressFinalize(this);

    /// <summary>A normalised batch [B, 3, S, S] on the device.</summary>
    protected torch.Tensor Images(PreparedImages data, int[] indices) => TorchTensors.ToTorch(data.Batch(indices), Model.Model.Device);
}

/// <summary>Memory tokens, head + class token, VQT + memory, full fine-tuning: the model on the batch's images.</summary>
public sealed class TorchImageStep(TorchEngineModel model, PreparedImages images) : TorchTrainingStep(model)
{
    public override MLNet.MemoryTokens.Tensor Forward(int[] indices) => Model.ForwardWithGraph(() => Model.Model.Forward(Images(images, indices), training: true));
    public override float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel) => Model.PredictLogits(data, batchSize, cancel).Data;
}

/// <summary>The linear probe: the frozen backbone's final-norm class tokens [N, D] computed once on the device, then only the
/// head trains on them (validation computes its own the same way).</summary>
public sealed class TorchFeatureStep : TorchTrainingStep
{
    readonly TorchAdaptedVit _model;
    readonly torch.Tensor _features;   // [N, D] on the device

    public TorchFeatureStep(TorchEngineModel model, StepContext context) : base(model)
    {
        _model = (TorchAdaptedVit)model.Model;
        var images = context.Images;
        _features = Features(images, context.BatchSize, context.Cancel,
            (done, rate, eta) => context.Report(new StepNotice("features", $"features {done}/{images.Count}", rate, eta)));
    }

    torch.Tensor Features(PreparedImages images, int batchSize, CancellationToken cancel, Action<int, double, TimeSpan>? progress = null)
    {
        using var _ = no_grad();
        var parts = new List<torch.Tensor>();
        var watch = Stopwatch.StartNew();
        try
        {
            for (int start = 0; start < images.Count; start += batchSize)
            {
                cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
                parts.Add(scope.MoveToOuter(_model.Backbone.PreLogits(Images(images, idx))));
                int done = start + idx.Length;
                double rate = done / watch.Elapsed.TotalSeconds;
                progress?.Invoke(done, rate, TimeSpan.FromSeconds((images.Count - done) / rate));
            }
            return cat(parts, 0).DetachFromDisposeScope();
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    public override MLNet.MemoryTokens.Tensor Forward(int[] indices) => Model.ForwardWithGraph(() =>
        F.linear(_features.index_select(0, torch.tensor(indices.Select(i => (long)i).ToArray()).to(_model.Device)), _model.HeadWeight, _model.HeadBias));

    public override float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel)
    {
        using var features = Features(data, batchSize, cancel);
        using var _ = no_grad();
        using var logits = F.linear(features, _model.HeadWeight, _model.HeadBias);
        return TorchTensors.ToEngine(logits).Data;
    }

    public override void Dispose()
    {
        _features.Dispose();
        base.Dispose();
    }
}

/// <summary>VQT: the first time an image is seen its backbone pass fills the key/value cache; afterwards the step reads the
/// cache and runs only the query paths. Every batch goes through the cache's dtype, so all epochs see the same values. The
/// cache lives on the device when it fits the cache budget (<see cref="TuningOptions.CacheBudgetBytes"/>), else in pinned host
/// memory, copied batch by batch (on the CPU both are host memory).</summary>
public sealed class TorchQueryCacheStep : TorchTrainingStep
{
    readonly TorchQueryTunedVit _model;
    readonly PreparedImages _images;
    readonly TorchKeyValueCache _cache;

    public TorchQueryCacheStep(TorchEngineModel model, StepContext context) : base(model)
    {
        _model = (TorchQueryTunedVit)model.Model;
        _images = context.Images;
        var (c, tuning) = (context.Backbone.Model.Config, context.Tuning);
        long bytes = TorchKeyValueCache.ImageBytes(c, tuning.CacheDType) * _images.Count;
        bool onDevice = _model.Device.type != DeviceType.CUDA || bytes <= tuning.CacheBudgetBytes;
        var location = onDevice ? KeyValueCacheLocation.Device : KeyValueCacheLocation.PinnedHost;
        context.Report(new StepNotice("cache", $"VQT cache: {_images.Count} images × {c.Depth} layers × {c.NumTokens} tokens × 2·{c.Dim} {tuning.CacheDType} = {bytes / 1e6:F1} MB, " +
            (_model.Device.type != DeviceType.CUDA ? "in memory" : onDevice ? $"on {_model.Device}" : $"in pinned host memory (over the {tuning.CacheBudgetBytes / 1e9:F1} GB cache budget)")));
        _cache = new TorchKeyValueCache(_images.Count, c, tuning.CacheDType, location, _model.Device);
    }

    public override MLNet.MemoryTokens.Tensor Forward(int[] indices) => Model.ForwardWithGraph(() =>
    {
        var missing = indices.Where(i => !_cache.IsFilled(i)).ToArray();
        if (missing.Length > 0)
        {
            var (kv, cls) = _model.BackbonePass(Images(_images, missing));
            _cache.Store(missing, kv, cls);
        }
        var (keyValues, classToken) = _cache.Load(indices);
        return _model.ForwardCached(keyValues, classToken, training: true);
    });

    public override float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel) => Model.PredictLogits(data, batchSize, cancel).Data;

    public override void Dispose()
    {
        _cache.Dispose();
        base.Dispose();
    }
}
