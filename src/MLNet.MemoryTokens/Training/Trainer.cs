using System.Diagnostics;
using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>The outcome of a training run: the adapter (trained tensors + config) and per-epoch figures.</summary>
public sealed record TrainingResult(Adapter Adapter, ITunedModel Model, IReadOnlyList<EpochMetrics> History);

/// <summary>Trains any tuning method on a labelled image set: mini-batches, AdamW or SGD, warm-up + cosine, clipping, label
/// smoothing, stratified validation, progress, cancellation, resumable checkpoints, and a clear stop on a non-finite loss.
/// The method table (<see cref="TuningMethods"/>) supplies the model and the step that trains it; this loop is the same for all.</summary>
public static class Trainer
{
    /// <summary>Trains on <paramref name="train"/> (validating on <paramref name="validation"/>, or on a held-out stratified split).</summary>
    public static TrainingResult Train(Backbone backbone, IImageDataset train, IImageDataset? validation, TuningOptions tuning, TrainingOptions options)
    {
        tuning.Validate();
        options.Validate();
        TrainingOutputs.EnsureWritable(tuning, options);   // before hours of work, not after
        var cancel = options.CancellationToken;
        var preprocess = TrainingPreprocess(backbone);
        Report(options, new TrainingProgress("prepare", 0, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero, Message: $"decoding and resizing {train.Count} images to {preprocess.InputSize}×{preprocess.InputSize}, while the first epoch runs"));
        // the images are decoded on background threads while the first epoch computes (each batch's images first); a bad image
        // stops the run before anything is written, naming every bad image of the set
        var all = PreparedImages.Stream(train, preprocess, cancel);
        PreparedImages? validationImages = null;
        try
        {
            all.WhenComplete(warnings => { foreach (var w in warnings) Report(options, new TrainingProgress("warning", 0, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero, Message: w)); });
            PreparedImages trainSet;
            PreparedImages? valSet = null;
            if (validation is not null) { trainSet = all; valSet = validationImages = PreparedImages.Stream(validation, preprocess, cancel); }
            else if (options.ValidationFraction > 0)
            {
                var (t, v) = StratifiedSplit.Split(all.Labels, all.ClassNames.Count, options.ValidationFraction, options.Seed);
                // too few images per class for a hold-out: train on everything rather than validate on nothing
                (trainSet, valSet) = v.Length == 0 ? (all, null) : (all.Subset(t), all.Subset(v));
            }
            else trainSet = all;
            var result = Train(backbone, trainSet, valSet, tuning, options);
            all.Complete();   // every image was read (a set larger than the epochs reached still names its bad images)
            validationImages?.Complete();
            return result;
        }
        finally
        {
            all.StopPreparing();   // after an error: no more decoding for a run that has ended
            validationImages?.StopPreparing();
        }
    }

    /// <summary>Training images are resized whole to the input size (crop fraction 1) with the backbone's interpolation and mean/std.</summary>
    public static PreprocessConfig TrainingPreprocess(Backbone backbone) => backbone.Preprocess with { CropFraction = 1.0 };

    /// <summary>Trains on already prepared images (validation may be null).</summary>
    public static TrainingResult Train(Backbone backbone, PreparedImages trainSet, PreparedImages? valSet, TuningOptions tuning, TrainingOptions options)
    {
        tuning.Validate(backbone);
        options.Validate();
        // the frozen parts a step computes without a tape (cached keys/values, validation) would otherwise run in the
        // integer precision: training is fp32 throughout, and says so rather than switching a model other threads may be serving
        if (backbone.Model.InferencePrecision != InferencePrecision.Fp32)
            throw new ArgumentException($"Backbone {backbone.Source} is set to {backbone.Model.InferencePrecision} inference; training runs in fp32: set its Model.InferencePrecision to Fp32 to train (and back to serve).");
        TrainingDataCheck.Check(trainSet);
        var cancel = options.CancellationToken;
        int classes = trainSet.ClassNames.Count;
        if (valSet is { Count: 0 }) valSet = null;
        // the method table builds the model and the step that trains it, on the backend and device asked for; the loop below
        // is the same for every method and backend
        var compute = TuningMethods.Compute(tuning.Method, options.Compute);
        var model = compute.CreateModel(backbone.Model, tuning, classes, options.Seed);
        var context = new StepContext(backbone, trainSet, tuning, options.BatchSize, cancel,
            n => Report(options, new TrainingProgress(n.Phase, n.AfterTraining ? options.Epochs : 0, options.Epochs, 0, 0, double.NaN, n.ImagesPerSecond, n.Eta, Message: n.Message)));
        using var step = compute.CreateTrainingStep(model, context);
        var optimizer = CreateOptimizer(step, options);
        var history = new List<EpochMetrics>();
        int startEpoch = 0;
        var checkpoint = options.CheckpointDirectory is null ? null : new TrainingCheckpoint(options.CheckpointDirectory, () => RunIdentity.Of(backbone, trainSet, tuning, options));
        if (options.Resume && checkpoint!.Exists)
        {
            startEpoch = checkpoint.Restore(model, optimizer, history, tuning);
            optimizer.CopyParametersFromHost();
            Report(options, new TrainingProgress("resume", startEpoch, options.Epochs, optimizer.Steps, 0, double.NaN, 0, TimeSpan.Zero, Message: $"resumed after epoch {startEpoch} from {checkpoint.Directory}"));
        }
        RunEpochs("train", step, trainSet, Validation(step, valSet, classes, options), classes, options, optimizer, startEpoch, history,
            epochsDone =>
            {
                if (checkpoint is null) return;
                optimizer.CopyParametersToHost();
                checkpoint.Save(model, optimizer, history, tuning, epochsDone);
            });
        optimizer.CopyParametersToHost();
        // a method may train on in further phases (from epoch 1, a fresh optimizer over that phase's parameters)
        for (var phase = step.NextPhase(); phase is not null; phase = phase.Step.NextPhase())
        {
            var phaseOptimizer = CreateOptimizer(phase.Step, options);
            RunEpochs(phase.Name, phase.Step, trainSet, Validation(phase.Step, valSet, classes, options), classes, options, phaseOptimizer, 0, history, null);
            phaseOptimizer.CopyParametersToHost();
        }
        var trainingInfo = new Dictionary<string, JsonElement>
        {
            ["options"] = JsonSerializer.SerializeToElement(new
            {
                options.Epochs, options.BatchSize, options.LearningRate, Optimizer = options.Optimizer.ToString(), options.Momentum, options.WeightDecay,
                options.WarmupEpochs, options.MinLearningRate, options.GradientClipNorm, options.LabelSmoothing, options.Seed, options.ValidationFraction,
                TrainImages = trainSet.Count, ValidationImages = valSet?.Count ?? 0, TrainableParameters = model.TrainableCount(),
            }),
            ["history"] = JsonSerializer.SerializeToElement(history),
        };
        if (!options.Compute.IsManaged)   // managed adapters stay as they were: the compute is recorded when it was another backend
            trainingInfo["compute"] = JsonSerializer.SerializeToElement(new { options.Compute.Backend, options.Compute.Device, Precision = options.Compute.Precision.ToString() });
        var adapter = Adapter.From(model, backbone, tuning, trainSet.ClassNames, TrainingPreprocess(backbone), trainingInfo, compute);
        return new TrainingResult(adapter, model, history);
    }

    /// <summary>The epoch loop every method shares: shuffled mini-batches, loss, backward, clipping, optimizer step with the
    /// warm-up + cosine schedule, progress, cancellation, per-epoch validation, and a clear stop on a non-finite loss.</summary>
    static void RunEpochs(string phase, ITrainingStep step, PreparedImages trainSet, Func<ClassificationMetrics>? validate, int classes,
        TrainingOptions options, Optimizer optimizer, int startEpoch, List<EpochMetrics> history, Action<int>? afterEpoch)
    {
        var parameters = step.Parameters;
        var cancel = options.CancellationToken;
        int stepsPerEpoch = (trainSet.Count + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs, firstStep = optimizer.Steps;
        var schedule = new LearningRateSchedule(options.LearningRate, (long)Math.Round(options.WarmupEpochs * stepsPerEpoch), totalSteps, options.MinLearningRate);
        var labels = trainSet.Labels;
        var guard = new DivergenceGuard(classes, options.DivergenceFactor);
        var watch = Stopwatch.StartNew();
        for (int epoch = startEpoch; epoch < options.Epochs; epoch++)
        {
            var epochWatch = Stopwatch.StartNew();
            var order = Permutation(trainSet.Count, options.Seed, epoch);
            double lossSum = 0; int correct = 0, seen = 0;
            for (int b = 0; b < stepsPerEpoch; b++)
            {
                cancel.ThrowIfCancellationRequested();
                var idx = order.AsSpan(b * options.BatchSize, Math.Min(options.BatchSize, trainSet.Count - b * options.BatchSize)).ToArray();
                // images still being prepared: the next batch's are decoded while this one computes
                if (b + 1 < stepsPerEpoch && !trainSet.IsComplete)
                    trainSet.Prefetch(order.AsSpan((b + 1) * options.BatchSize, Math.Min(options.BatchSize, trainSet.Count - (b + 1) * options.BatchSize)));
                var batchLabels = idx.Select(i => labels[i]).ToArray();
                var logits = step.Forward(idx);
                var dLogits = new Tensor(logits.Shape);
                double loss = CrossEntropy.Compute(logits.Data, batchLabels, classes, options.LabelSmoothing, dLogits.Data);
                long globalStep = optimizer.Steps;
                float lr = schedule.At(globalStep);
                guard.Observe(loss, globalStep + 1, epoch + 1, b + 1, lr);   // non-finite, or far above its start: stop, naming the step
                optimizer.ClearGradients(parameters);
                step.Backward(dLogits);
                double norm = optimizer.ClipGradients(parameters, options.GradientClipNorm);
                if (!double.IsFinite(norm))
                    throw new TrainingDivergedException($"Training stopped: the gradient norm became {norm} at step {globalStep + 1} (epoch {epoch + 1}, batch {b + 1}).");
                optimizer.Step(parameters, lr);
                lossSum += loss * idx.Length; seen += idx.Length;
                for (int i = 0; i < idx.Length; i++) if (ArgMax(logits.Data.AsSpan(i * classes, classes)) == batchLabels[i]) correct++;
                double perStep = watch.Elapsed.TotalSeconds / (optimizer.Steps - firstStep);
                Report(options, new TrainingProgress(phase, epoch + 1, options.Epochs, globalStep + 1, totalSteps, lossSum / seen,
                    seen / epochWatch.Elapsed.TotalSeconds, TimeSpan.FromSeconds(perStep * (totalSteps - globalStep - 1))));
            }
            var m = validate?.Invoke();
            var em = new EpochMetrics(epoch + 1, lossSum / seen, (double)correct / seen, m?.LogLoss, m?.Accuracy, epochWatch.Elapsed.TotalSeconds, seen / epochWatch.Elapsed.TotalSeconds);
            history.Add(em);
            afterEpoch?.Invoke(epoch + 1);
            Report(options, new TrainingProgress("epoch", epoch + 1, options.Epochs, optimizer.Steps, totalSteps, em.TrainLoss, em.ImagesPerSecond,
                TimeSpan.FromSeconds(watch.Elapsed.TotalSeconds / Math.Max(1, optimizer.Steps - firstStep) * (totalSteps - optimizer.Steps)), m?.LogLoss, m?.Accuracy,
                Message: phase == "train" ? null : phase));
        }
    }

    /// <summary>The optimizer of a step's parameters: on the device for a step whose parameters live there, else the engine's.</summary>
    static Optimizer CreateOptimizer(ITrainingStep step, TrainingOptions o) => step is IDeviceTrainingStep device
        ? device.CreateOptimizer(o.Optimizer, o.WeightDecay, o.Momentum)
        : Optimizer.Create(o.Optimizer, step.Parameters, o.WeightDecay, o.Momentum);

    /// <summary>Logits [N, C] of a model on prepared images, in batches (no activations kept).</summary>
    public static Tensor PredictLogits(ITunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default) =>
        model.PredictLogits(data, batchSize, cancel);

    /// <summary>Accuracy, macro-F1, log-loss and confusion matrix of a model on prepared images.</summary>
    public static ClassificationMetrics Evaluate(ITunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default) =>
        ClassificationMetrics.From(PredictLogits(model, data, batchSize, cancel).Data, data.Labels, model.NumClasses);

    /// <summary>Per-epoch validation of what <paramref name="step"/> trains, or null without a validation set.</summary>
    static Func<ClassificationMetrics>? Validation(ITrainingStep step, PreparedImages? valSet, int classes, TrainingOptions options) =>
        valSet is null ? null : () => ClassificationMetrics.From(step.ValidationLogits(valSet, options.BatchSize, options.CancellationToken), valSet.Labels, classes);

    /// <summary>The epoch's shuffle: seeded by (seed, epoch) through a fixed mix (HashCode is randomised per process), so runs repeat across processes.</summary>
    static int[] Permutation(int n, int seed, int epoch)
    {
        var order = Enumerable.Range(0, n).ToArray();
        new Random(Seeds.Mix(seed, epoch, 0x7a11)).Shuffle(order);
        return order;
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static void Report(TrainingOptions o, TrainingProgress p) => o.Progress?.Report(p);
}
