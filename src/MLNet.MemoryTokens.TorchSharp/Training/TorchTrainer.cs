using System.Diagnostics;
using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.MemoryTokens.TorchSharp.Training;

/// <summary>A TorchSharp training run's outcome: the adapter (the engine's format), the trained model (dispose it), per-epoch figures.</summary>
public sealed record TorchTrainingResult(Adapter Adapter, TorchTunedModel Model, IReadOnlyList<EpochMetrics> History) : IDisposable
{
    public void Dispose() => Model.Dispose();
}

/// <summary>The engine's <c>Trainer</c> on TorchSharp: the same data preparation and split, shuffle (seeded by (seed, epoch)),
/// warm-up + cosine schedule, label-smoothed cross-entropy, global-norm clipping, AdamW / SGD, progress, cancellation,
/// per-epoch validation, resumable checkpoints (the engine's format) and stop on a non-finite loss. Each step runs in its own
/// dispose scope.</summary>
public static class TorchTrainer
{
    /// <summary>Trains on <paramref name="train"/> (validating on <paramref name="validation"/>, or on a stratified hold-out).</summary>
    public static TorchTrainingResult Train(Backbone backbone, IImageDataset train, IImageDataset? validation, TuningOptions tuning, TrainingOptions options,
        TorchBackendOptions backend)
    {
        tuning.Validate();
        options.Validate();
        var preprocess = Trainer.TrainingPreprocess(backbone);
        options.Progress?.Report(new TrainingProgress("prepare", 0, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero, Message: $"decoding and resizing {train.Count} images to {preprocess.InputSize}×{preprocess.InputSize}"));
        var all = PreparedImages.From(train, preprocess, options.CancellationToken);
        PreparedImages trainSet;
        PreparedImages? valSet = null;
        if (validation is not null) { trainSet = all; valSet = PreparedImages.From(validation, preprocess, options.CancellationToken); }
        else if (options.ValidationFraction > 0)
        {
            var (t, v) = StratifiedSplit.Split(all.Labels, all.ClassNames.Count, options.ValidationFraction, options.Seed);
            (trainSet, valSet) = v.Length == 0 ? (all, null) : (all.Subset(t), all.Subset(v));
        }
        else trainSet = all;
        return Train(backbone, trainSet, valSet, tuning, options, backend);
    }

    /// <summary>Trains on prepared images (validation may be null).</summary>
    public static TorchTrainingResult Train(Backbone backbone, PreparedImages trainSet, PreparedImages? valSet, TuningOptions tuning, TrainingOptions options,
        TorchBackendOptions backend)
    {
        tuning.Validate();
        foreach (var a in tuning.Extends) a.EnsureMatches(backbone, a.Folder ?? "<extended adapter>");
        options.Validate();
        var device = TorchBackend.Prepare(backend);
        int classes = trainSet.ClassNames.Count;
        if (valSet is { Count: 0 }) valSet = null;
        var model = TorchTuning.Create(backbone, tuning, classes, options.Seed, device, backend.Precision);
        try
        {
            using var step = CreateStep(model, trainSet, tuning, options, backend);
            using var optimizer = TorchOptimizer.Create(options.Optimizer, model.Trainable, options.WeightDecay, options.Momentum);
            var history = new List<EpochMetrics>();
            int startEpoch = 0;
            var checkpoint = options.CheckpointDirectory is null ? null : new TorchTrainingCheckpoint(options.CheckpointDirectory);
            if (options.Resume && checkpoint!.Exists)
            {
                startEpoch = checkpoint.Restore(model, optimizer, history, tuning);
                options.Progress?.Report(new TrainingProgress("resume", startEpoch, options.Epochs, optimizer.Steps, 0, double.NaN, 0, TimeSpan.Zero, Message: $"resumed after epoch {startEpoch} from {checkpoint.Directory}"));
            }
            RunEpochs(step, model, trainSet, valSet, classes, options, optimizer, startEpoch, history, epochs => checkpoint?.Save(model, optimizer, history, tuning, epochs));
            var info = new Dictionary<string, JsonElement>
            {
                ["options"] = JsonSerializer.SerializeToElement(new
                {
                    options.Epochs, options.BatchSize, options.LearningRate, Optimizer = options.Optimizer.ToString(), options.Momentum, options.WeightDecay,
                    options.WarmupEpochs, options.MinLearningRate, options.GradientClipNorm, options.LabelSmoothing, options.Seed, options.ValidationFraction,
                    TrainImages = trainSet.Count, ValidationImages = valSet?.Count ?? 0, TrainableParameters = model.TrainableCount,
                }),
                ["history"] = JsonSerializer.SerializeToElement(history),
                ["backend"] = JsonSerializer.SerializeToElement(new { Name = "torchsharp", Device = device.ToString(), Precision = backend.Precision.ToString() }),
            };
            var adapter = TorchTuning.ToAdapter(model, backbone, tuning, trainSet.ClassNames, Trainer.TrainingPreprocess(backbone), info);
            return new TorchTrainingResult(adapter, model, history);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>One batch's logits with a graph to the trainable tensors.</summary>
    internal interface IStep : IDisposable
    {
        torch.Tensor Forward(int[] indices);
        /// <summary>Logits of a validation set.</summary>
        MLNet.MemoryTokens.Tensor Predict(PreparedImages data, int batchSize, CancellationToken cancel);
    }

    internal static IStep CreateStep(TorchTunedModel model, PreparedImages trainSet, TuningOptions tuning, TrainingOptions options, TorchBackendOptions backend) => tuning.Method switch
    {
        TuningMethod.HeadOnly => new HeadFeatureStep((TorchAdaptedVit)model, trainSet, options.BatchSize, options.CancellationToken),
        TuningMethod.Vqt => new QueryCacheStep((TorchQueryTunedVit)model, trainSet, tuning, backend.KeyValueCache),
        _ => new ImageStep(model, trainSet),
    };

    /// <summary>The epoch loop (the engine's <c>RunEpochs</c>): shuffled mini-batches, loss, backward, clipping, optimizer step
    /// with warm-up + cosine, progress, cancellation, validation, a clear stop on a non-finite loss or gradient.</summary>
    internal static void RunEpochs(IStep step, TorchTunedModel model, PreparedImages trainSet, PreparedImages? valSet, int classes, TrainingOptions options,
        TorchOptimizer optimizer, int startEpoch, List<EpochMetrics> history, Action<int>? afterEpoch)
    {
        var cancel = options.CancellationToken;
        int stepsPerEpoch = (trainSet.Count + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs, firstStep = optimizer.Steps;
        var schedule = new LearningRateSchedule(options.LearningRate, (long)Math.Round(options.WarmupEpochs * stepsPerEpoch), totalSteps, options.MinLearningRate);
        var watch = Stopwatch.StartNew();
        for (int epoch = startEpoch; epoch < options.Epochs; epoch++)
        {
            var epochWatch = Stopwatch.StartNew();
            var order = Permutation(trainSet.Count, options.Seed, epoch);
            double lossSum = 0; long correct = 0; int seen = 0;
            for (int b = 0; b < stepsPerEpoch; b++)
            {
                cancel.ThrowIfCancellationRequested();
                var idx = order.AsSpan(b * options.BatchSize, Math.Min(options.BatchSize, trainSet.Count - b * options.BatchSize)).ToArray();
                long globalStep = optimizer.Steps;
                float lr = schedule.At(globalStep);
                var (loss, right) = TrainStep(step, model, idx, trainSet.Labels, options, optimizer, lr,
                    where: $"step {globalStep + 1} (epoch {epoch + 1}, batch {b + 1})");
                lossSum += loss * idx.Length; seen += idx.Length; correct += right;
                double perStep = watch.Elapsed.TotalSeconds / (optimizer.Steps - firstStep);
                options.Progress?.Report(new TrainingProgress("train", epoch + 1, options.Epochs, globalStep + 1, totalSteps, lossSum / seen,
                    seen / epochWatch.Elapsed.TotalSeconds, TimeSpan.FromSeconds(perStep * (totalSteps - globalStep - 1))));
            }
            var m = valSet is null ? null : ClassificationMetrics.From(step.Predict(valSet, options.BatchSize, cancel).Data, valSet.Labels, classes);
            var em = new EpochMetrics(epoch + 1, lossSum / seen, (double)correct / seen, m?.LogLoss, m?.Accuracy, epochWatch.Elapsed.TotalSeconds, seen / epochWatch.Elapsed.TotalSeconds);
            history.Add(em);
            afterEpoch?.Invoke(epoch + 1);
            options.Progress?.Report(new TrainingProgress("epoch", epoch + 1, options.Epochs, optimizer.Steps, totalSteps, em.TrainLoss, em.ImagesPerSecond,
                TimeSpan.FromSeconds(watch.Elapsed.TotalSeconds / Math.Max(1, optimizer.Steps - firstStep) * (totalSteps - optimizer.Steps)), m?.LogLoss, m?.Accuracy));
        }
    }

    /// <summary>One optimizer step on a batch, in its own dispose scope: (mean loss, correct predictions).</summary>
    internal static (double Loss, long Correct) TrainStep(IStep step, TorchTunedModel model, int[] idx, int[] labels, TrainingOptions options, TorchOptimizer optimizer,
        float lr, string where = "this step")
    {
        using var scope = NewDisposeScope();
        var logits = step.Forward(idx);
        var target = torch.tensor(idx.Select(i => (long)labels[i]).ToArray()).to(model.Device);
        var loss = F.cross_entropy(logits, target, label_smoothing: options.LabelSmoothing);
        double value = loss.item<float>();
        if (!double.IsFinite(value))
            throw new TrainingDivergedException($"Training stopped: the loss became {value} at {where} with learning rate {lr:G3}. Lower the learning rate or enable gradient clipping.");
        foreach (var (_, p) in model.Trainable) p.grad?.zero_();
        loss.backward();
        double norm = TorchGradientClipping.ClipGlobalNorm(model.Trainable, options.GradientClipNorm);
        if (!double.IsFinite(norm)) throw new TrainingDivergedException($"Training stopped: the gradient norm became {norm} at {where}.");
        optimizer.Step(lr);
        long correct;
        using (no_grad()) correct = logits.argmax(1).eq(target).sum().item<long>();
        return (value, correct);
    }

    /// <summary>Logits [N, C] of a model on prepared images, in batches, under no_grad.</summary>
    public static MLNet.MemoryTokens.Tensor PredictLogits(TorchTunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default)
    {
        var logits = new MLNet.MemoryTokens.Tensor([data.Count, model.NumClasses]);
        using var _ = no_grad();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batchSize, data.Count - start)).ToArray();
            var l = TorchTensors.ToEngine(model.Forward(Images(data, idx, model.Device), training: false));
            l.Data.CopyTo(logits.Data, (long)start * model.NumClasses);
        }
        return logits;
    }

    /// <summary>Accuracy, macro-F1, log-loss and confusion matrix on prepared images.</summary>
    public static ClassificationMetrics Evaluate(TorchTunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default) =>
        ClassificationMetrics.From(PredictLogits(model, data, batchSize, cancel).Data, data.Labels, model.NumClasses);

    /// <summary>A normalised batch [B, 3, S, S] on the device.</summary>
    internal static torch.Tensor Images(PreparedImages data, int[] idx, Device device) => TorchTensors.ToTorch(data.Batch(idx), device);

    /// <summary>The engine's shuffle: seeded by (seed, epoch) through <see cref="Seeds.Mix"/>.</summary>
    internal static int[] Permutation(int n, int seed, int epoch)
    {
        var order = Enumerable.Range(0, n).ToArray();
        new Random(Seeds.Mix(seed, epoch, 0x7a11)).Shuffle(order);
        return order;
    }

    /// <summary>Memory tokens, class token, VQT + memory, full fine-tuning: the model on the batch's images.</summary>
    sealed class ImageStep(TorchTunedModel model, PreparedImages images) : IStep
    {
        public torch.Tensor Forward(int[] indices) => model.Forward(Images(images, indices, model.Device), training: true);
        public MLNet.MemoryTokens.Tensor Predict(PreparedImages data, int batchSize, CancellationToken cancel) => PredictLogits(model, data, batchSize, cancel);
        public void Dispose() { }
    }

    /// <summary>Linear probe: the frozen backbone's final-norm class tokens computed once (on the device), then only the head trains.</summary>
    sealed class HeadFeatureStep : IStep
    {
        readonly TorchAdaptedVit _model;
        readonly torch.Tensor _features;   // [N, D]

        public HeadFeatureStep(TorchAdaptedVit model, PreparedImages images, int batchSize, CancellationToken cancel)
        {
            _model = model;
            _features = Features(images, batchSize, cancel);
        }

        torch.Tensor Features(PreparedImages images, int batchSize, CancellationToken cancel)
        {
            using var _ = no_grad();
            var parts = new List<torch.Tensor>();
            for (int start = 0; start < images.Count; start += batchSize)
            {
                cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var idx = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
                parts.Add(scope.MoveToOuter(_model.Backbone.PreLogits(Images(images, idx, _model.Device))));
            }
            var all = cat(parts, 0);
            foreach (var p in parts) p.Dispose();
            return all;
        }

        public torch.Tensor Forward(int[] indices)
        {
            using var scope = NewDisposeScope();
            var rows = _features.index_select(0, torch.tensor(indices.Select(i => (long)i).ToArray()).to(_model.Device));
            return scope.MoveToOuter(F.linear(rows, _model.HeadWeight, _model.HeadBias));
        }

        public MLNet.MemoryTokens.Tensor Predict(PreparedImages data, int batchSize, CancellationToken cancel)
        {
            using var features = Features(data, batchSize, cancel);
            using var _ = no_grad();
            using var logits = F.linear(features, _model.HeadWeight, _model.HeadBias);
            return TorchTensors.ToEngine(logits);
        }

        public void Dispose() => _features.Dispose();
    }

    /// <summary>VQT: the first time an image is seen its backbone pass fills the key/value cache; afterwards the step reads the
    /// cache and runs only the query paths. Every batch goes through the cache's dtype, so all epochs see the same values.</summary>
    sealed class QueryCacheStep(TorchQueryTunedVit model, PreparedImages images, TuningOptions tuning, KeyValueCacheLocation location) : IStep
    {
        readonly TorchKeyValueCache _cache = new(images.Count, model.Backbone.Config, tuning.CacheDType, location, model.Device);

        public torch.Tensor Forward(int[] indices)
        {
            using var scope = NewDisposeScope();
            var missing = indices.Where(i => !_cache.IsFilled(i)).ToArray();
            if (missing.Length > 0)
            {
                var (kv, cls) = model.BackbonePass(Images(images, missing, model.Device));
                _cache.Store(missing, kv, cls);
            }
            var (keyValues, classToken) = _cache.Load(indices);
            return scope.MoveToOuter(model.ForwardCached(keyValues, classToken, training: true));
        }

        public MLNet.MemoryTokens.Tensor Predict(PreparedImages data, int batchSize, CancellationToken cancel) => PredictLogits(model, data, batchSize, cancel);
        public void Dispose() => _cache.Dispose();
    }
}
