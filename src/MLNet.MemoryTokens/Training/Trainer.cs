using System.Diagnostics;
using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>The outcome of a training run: the adapter (trained tensors + config) and per-epoch figures.</summary>
public sealed record TrainingResult(Adapter Adapter, ITunedModel Model, IReadOnlyList<EpochMetrics> History);

/// <summary>Trains any <see cref="TuningMethod"/> on a labelled image set: mini-batches, AdamW or SGD, warm-up + cosine, clipping,
/// label smoothing, stratified validation, progress, cancellation, resumable checkpoints, and a clear stop on a non-finite loss.</summary>
public static class Trainer
{
    /// <summary>Trains on <paramref name="train"/> (validating on <paramref name="validation"/>, or on a held-out stratified split).</summary>
    public static TrainingResult Train(Backbone backbone, IImageDataset train, IImageDataset? validation, TuningOptions tuning, TrainingOptions options)
    {
        tuning.Validate();
        options.Validate();
        var cancel = options.CancellationToken;
        var preprocess = TrainingPreprocess(backbone);
        Report(options, new TrainingProgress("prepare", 0, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero, Message: $"decoding and resizing {train.Count} images to {preprocess.InputSize}×{preprocess.InputSize}"));
        var all = PreparedImages.From(train, preprocess, cancel);
        PreparedImages trainSet;
        PreparedImages? valSet = null;
        if (validation is not null) { trainSet = all; valSet = PreparedImages.From(validation, preprocess, cancel); }
        else if (options.ValidationFraction > 0)
        {
            var (t, v) = StratifiedSplit.Split(all.Labels, all.ClassNames.Count, options.ValidationFraction, options.Seed);
            // too few images per class for a hold-out: train on everything rather than validate on nothing
            (trainSet, valSet) = v.Length == 0 ? (all, null) : (all.Subset(t), all.Subset(v));
        }
        else trainSet = all;
        return Train(backbone, trainSet, valSet, tuning, options);
    }

    /// <summary>Training images are resized whole to the input size (crop fraction 1) with the backbone's interpolation and mean/std.</summary>
    public static PreprocessConfig TrainingPreprocess(Backbone backbone) => backbone.Preprocess with { CropFraction = 1.0 };

    /// <summary>Trains on already prepared images (validation may be null).</summary>
    public static TrainingResult Train(Backbone backbone, PreparedImages trainSet, PreparedImages? valSet, TuningOptions tuning, TrainingOptions options)
    {
        tuning.Validate();
        foreach (var a in tuning.Extends) a.EnsureMatches(backbone, a.Folder ?? "<extended adapter>");
        options.Validate();
        var cancel = options.CancellationToken;
        int classes = trainSet.ClassNames.Count;
        if (valSet is { Count: 0 }) valSet = null;
        var model = tuning.CreateModel(backbone.Model, classes, options.Seed);
        using var step = tuning.Method switch
        {
            TuningMethod.HeadOnly => new CachedFeatureStep((AdaptedVit)model, backbone, trainSet, options, cancel),
            TuningMethod.Vqt => new QueryCacheStep((QueryTunedVit)model, backbone, trainSet, tuning, options),
            _ => (ITrainingStep)new ImageStep(model, trainSet),
        };
        var optimizer = Optimizer.Create(options.Optimizer, model.Parameters, options.WeightDecay, options.Momentum);
        var history = new List<EpochMetrics>();
        int startEpoch = 0;
        var checkpoint = options.CheckpointDirectory is null ? null : new TrainingCheckpoint(options.CheckpointDirectory);
        if (options.Resume && checkpoint!.Exists)
        {
            startEpoch = checkpoint.Restore(model, optimizer, history, tuning);
            Report(options, new TrainingProgress("resume", startEpoch, options.Epochs, optimizer.Steps, 0, double.NaN, 0, TimeSpan.Zero, Message: $"resumed after epoch {startEpoch} from {checkpoint.Directory}"));
        }
        Action? afterBackward = tuning.GroupLasso > 0 && model is QueryTunedVit lassoed ? () => lassoed.AddGroupLassoGradient(tuning.GroupLasso) : null;
        RunEpochs("train", step, model.Parameters, trainSet, valSet is null ? null : () => Evaluate(model, step, valSet, options.BatchSize, cancel),
            classes, options, optimizer, startEpoch, history, afterBackward, epochsDone => checkpoint?.Save(model, optimizer, history, tuning, epochsDone));
        if (model is QueryTunedVit vqt && tuning.KeepFeatureFraction < 1)
            RetrainCompressedHead(vqt, (QueryCacheStep)step, trainSet, valSet, tuning, options, history);
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
        var adapter = Adapter.From(model, backbone, tuning, trainSet.ClassNames, TrainingPreprocess(backbone), trainingInfo);
        return new TrainingResult(adapter, model, history);
    }

    /// <summary>The epoch loop every method shares: shuffled mini-batches, loss, backward, clipping, optimizer step with the
    /// warm-up + cosine schedule, progress, cancellation, per-epoch validation, and a clear stop on a non-finite loss.</summary>
    static void RunEpochs(string phase, ITrainingStep step, IReadOnlyList<TrainableParameter> parameters, PreparedImages trainSet,
        Func<ClassificationMetrics>? validate, int classes, TrainingOptions options, Optimizer optimizer, int startEpoch,
        List<EpochMetrics> history, Action? afterBackward, Action<int>? afterEpoch)
    {
        var cancel = options.CancellationToken;
        int stepsPerEpoch = (trainSet.Count + options.BatchSize - 1) / options.BatchSize;
        long totalSteps = (long)stepsPerEpoch * options.Epochs, firstStep = optimizer.Steps;
        var schedule = new LearningRateSchedule(options.LearningRate, (long)Math.Round(options.WarmupEpochs * stepsPerEpoch), totalSteps, options.MinLearningRate);
        var labels = trainSet.Labels;
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
                var batchLabels = idx.Select(i => labels[i]).ToArray();
                var logits = step.Forward(idx);
                var dLogits = new Tensor(logits.Shape);
                double loss = CrossEntropy.Compute(logits.Data, batchLabels, classes, options.LabelSmoothing, dLogits.Data);
                long globalStep = optimizer.Steps;
                float lr = schedule.At(globalStep);
                if (!double.IsFinite(loss))
                    throw new TrainingDivergedException($"Training stopped: the loss became {loss} at step {globalStep + 1} (epoch {epoch + 1}, batch {b + 1}) with learning rate {lr:G3}. Lower the learning rate or enable gradient clipping.");
                foreach (var p in parameters) Array.Clear(p.Grad.Data);
                step.Backward(dLogits);
                afterBackward?.Invoke();
                double norm = GradientClipping.ClipGlobalNorm(parameters, options.GradientClipNorm);
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

    /// <summary>VQT compression (as the official code): keep the features whose head columns the group-lasso penalty left largest,
    /// then retrain the head alone on those features (queries fixed, features from the cache).</summary>
    static void RetrainCompressedHead(QueryTunedVit vqt, QueryCacheStep cache, PreparedImages trainSet, PreparedImages? valSet, TuningOptions tuning,
        TrainingOptions options, List<EpochMetrics> history)
    {
        int full = vqt.FeatureDim;
        var kept = vqt.Compress(tuning.KeepFeatureFraction);
        Report(options, new TrainingProgress("compress", options.Epochs, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero,
            Message: $"VQT compression: kept {kept.Length} of {full} features ({tuning.KeepFeatureFraction:P0}); retraining the head"));
        var features = cache.HeadInputs(trainSet.Count, options.BatchSize);
        var head = vqt.Parameters.Where(p => p.Name.StartsWith("head.", StringComparison.Ordinal)).ToList();
        var step = new FeatureStep(features, kept.Length, vqt.HeadWeight, vqt.HeadBias, head);
        var optimizer = Optimizer.Create(options.Optimizer, head, options.WeightDecay, options.Momentum);
        Func<ClassificationMetrics>? validate = valSet is null ? null : () =>
            step.Evaluate(QueryFeaturizer.Featurize(vqt, valSet, options.BatchSize, options.CancellationToken).Data, valSet.Labels);
        RunEpochs("retrain head", step, head, trainSet, validate, vqt.NumClasses, options, optimizer, 0, history, null, null);
    }

    /// <summary>Logits [N, C] of a model on prepared images, in batches (no activations kept).</summary>
    public static Tensor PredictLogits(ITunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default)
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

    /// <summary>Accuracy, macro-F1, log-loss and confusion matrix of a model on prepared images.</summary>
    public static ClassificationMetrics Evaluate(ITunedModel model, PreparedImages data, int batchSize = 32, CancellationToken cancel = default) =>
        ClassificationMetrics.From(PredictLogits(model, data, batchSize, cancel).Data, data.Labels, model.NumClasses);

    static ClassificationMetrics Evaluate(ITunedModel model, ITrainingStep step, PreparedImages data, int batchSize, CancellationToken cancel) =>
        step is CachedFeatureStep cached ? cached.Evaluate(data, batchSize, cancel) : Evaluate(model, data, batchSize, cancel);

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

    /// <summary>One way of computing a batch's logits and sending gradients back.</summary>
    interface ITrainingStep : IDisposable
    {
        Tensor Forward(int[] indices);
        void Backward(Tensor dLogits);
        void IDisposable.Dispose() { }
    }

    /// <summary>The full model on images: memory, class token, full fine-tuning.</summary>
    sealed class ImageStep(ITunedModel model, PreparedImages images) : ITrainingStep
    {
        public Tensor Forward(int[] indices) => model.Forward(images.Batch(indices), keepForBackward: true);
        public void Backward(Tensor dLogits) => model.Backward(dLogits);
    }

    /// <summary>VQT: the first time an image is seen its backbone pass fills the key/value cache; afterwards the step reads the
    /// cache and runs only the query paths. Every batch goes through the cache's dtype, so epoch 1 and later ones see the same values.</summary>
    sealed class QueryCacheStep : ITrainingStep
    {
        readonly QueryTunedVit _model;
        readonly PreparedImages _images;
        readonly KeyValueCache _cache;

        public QueryCacheStep(QueryTunedVit model, Backbone backbone, PreparedImages images, TuningOptions tuning, TrainingOptions options)
        {
            _model = model; _images = images;
            var c = backbone.Model.Config;
            long bytes = KeyValueCache.ImageBytes(c, tuning.CacheDType) * images.Count;
            string where = tuning.CacheDirectory is null && bytes <= tuning.CacheBudgetBytes ? "in memory" : $"in a file under {tuning.CacheDirectory ?? Path.GetTempPath()}";
            options.Progress?.Report(new TrainingProgress("cache", 0, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero,
                Message: $"VQT cache: {images.Count} images × {c.Depth} layers × {c.NumTokens} tokens × 2·{c.Dim} {tuning.CacheDType} = {bytes / 1e6:F1} MB, {where}"));
            _cache = new KeyValueCache(images.Count, c, tuning.CacheDType, tuning.CacheBudgetBytes, tuning.CacheDirectory,
                $"backbone={backbone.Fingerprint};size={c.ImageSize};data={images.Fingerprint}");
            if (_cache.Reused)
                options.Progress?.Report(new TrainingProgress("cache", 0, options.Epochs, 0, 0, double.NaN, 0, TimeSpan.Zero, Message: $"reusing the VQT cache {_cache.FilePath}"));
        }

        public Tensor Forward(int[] indices)
        {
            var missing = indices.Where(i => !_cache.IsFilled(i)).ToArray();
            if (missing.Length > 0)
            {
                _model.CaptureInto(_images.Batch(missing), _cache, missing);
                if (_cache.AllFilled)
                {
                    // the cache is complete: later epochs never run the backbone, so its buffers go back to the system
                    _model.ReleaseCaptureBuffers();
                    GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                }
            }
            return _model.ForwardCached(_cache.Load(indices), keepForBackward: true);
        }

        public void Backward(Tensor dLogits) => _model.Backward(dLogits);
        public void Dispose() => _cache.Dispose();

        /// <summary>What the head reads for every cached image [N, K] (no dropout).</summary>
        public float[] HeadInputs(int count, int batchSize)
        {
            int k = _model.HeadInput;
            var all = new float[(long)count * k];
            for (int start = 0; start < count; start += batchSize)
            {
                var idx = Enumerable.Range(start, Math.Min(batchSize, count - start)).ToArray();
                _model.ForwardCached(_cache.Load(idx), keepForBackward: false);
                _model.LastFeatures(idx.Length).Data.CopyTo(all, (long)start * k);
            }
            return all;
        }
    }

    /// <summary>A linear head on fixed features [N, K]: the linear probe on the backbone's class tokens, and the VQT head retrained on kept features.</summary>
    sealed class FeatureStep(float[] features, int dim, Tensor weight, Tensor bias, IReadOnlyList<TrainableParameter> head) : ITrainingStep
    {
        float[] _batch = [];
        int _rows;
        int Classes => bias.Length;

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

        public ClassificationMetrics Evaluate(float[] evalFeatures, int[] labels)
        {
            var logits = new float[labels.Length * Classes];
            Linear.Forward(logits, evalFeatures, weight.Data, bias.Data, labels.Length, dim, Classes);
            return ClassificationMetrics.From(logits, labels, Classes);
        }
    }

    /// <summary>Linear probe: the frozen backbone's final-norm class tokens are computed once, then only the head trains.</summary>
    sealed class CachedFeatureStep : ITrainingStep
    {
        readonly FeatureStep _step;
        readonly Backbone _backbone;

        public CachedFeatureStep(AdaptedVit model, Backbone backbone, PreparedImages images, TrainingOptions options, CancellationToken cancel)
        {
            _backbone = backbone;
            var features = Features(backbone, images, options.BatchSize, cancel, p => options.Progress?.Report(new TrainingProgress("features", 0, options.Epochs, 0, 0, double.NaN, p.ImagesPerSecond, p.Eta, Message: $"features {p.Done}/{images.Count}")));
            _step = new FeatureStep(features, backbone.Model.Config.Dim, model.HeadWeight, model.HeadBias, model.Parameters);
        }

        internal static float[] Features(Backbone backbone, PreparedImages images, int batchSize, CancellationToken cancel, Action<(int Done, double ImagesPerSecond, TimeSpan Eta)>? progress = null)
        {
            int d = backbone.Model.Config.Dim, n = backbone.Model.Config.NumTokens;
            var features = new float[(long)images.Count * d];
            var watch = Stopwatch.StartNew();
            for (int start = 0; start < images.Count; start += batchSize)
            {
                cancel.ThrowIfCancellationRequested();
                var idx = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
                var tokens = backbone.Model.ForwardFeatures(images.Batch(idx));     // [B, N, D] after the final norm
                for (int b = 0; b < idx.Length; b++) Array.Copy(tokens.Data, (long)b * n * d, features, (long)(start + b) * d, d);
                int done = start + idx.Length;
                double rate = done / watch.Elapsed.TotalSeconds;
                progress?.Invoke((done, rate, TimeSpan.FromSeconds((images.Count - done) / rate)));
            }
            return features;
        }

        public Tensor Forward(int[] indices) => _step.Forward(indices);
        public void Backward(Tensor dLogits) => _step.Backward(dLogits);

        public ClassificationMetrics Evaluate(PreparedImages data, int batchSize, CancellationToken cancel) =>
            _step.Evaluate(Features(_backbone, data, batchSize, cancel), data.Labels);
    }
}

/// <summary>The whole training state in a folder (trainable tensors, optimizer moments, step, history), written after every
/// epoch with each file replaced atomically and the JSON state last, so a crash leaves the previous epoch's state loadable.</summary>
internal sealed class TrainingCheckpoint(string directory)
{
    public string Directory { get; } = directory;
    string StatePath => Path.Combine(Directory, "trainer_state.json");
    public bool Exists => File.Exists(StatePath);

    sealed record State(int EpochsDone, long Steps, string Method, int MemoryTokens, bool Masked, List<EpochMetrics> History, string ParamsFile, string OptimizerFile);

    public void Save(ITunedModel model, Optimizer optimizer, List<EpochMetrics> history, TuningOptions tuning, int epochsDone)
    {
        System.IO.Directory.CreateDirectory(Directory);
        // Epoch-stamped tensor files, then the state that names them: the state always points at complete files.
        string pf = $"trainer_params.e{epochsDone}.safetensors", of = $"trainer_optimizer.e{epochsDone}.safetensors";
        SafeTensorsFile.Write(Path.Combine(Directory, pf), model.Parameters.ToDictionary(p => p.Name, p => p.Value));
        SafeTensorsFile.Write(Path.Combine(Directory, of), optimizer.State);
        var state = new State(epochsDone, optimizer.Steps, tuning.Method.ToString(), tuning.MemoryTokens, tuning.Masked, history, pf, of);
        AtomicFile.Write(StatePath, s => JsonSerializer.Serialize(s, state, Adapter.Json));
        foreach (var old in System.IO.Directory.EnumerateFiles(Directory, "trainer_*.e*.safetensors"))
            if (Path.GetFileName(old) != pf && Path.GetFileName(old) != of) File.Delete(old);
    }

    /// <summary>Loads the saved state into the model and optimizer; returns the number of epochs already done.</summary>
    public int Restore(ITunedModel model, Optimizer optimizer, List<EpochMetrics> history, TuningOptions tuning)
    {
        State state;
        try { state = JsonSerializer.Deserialize<State>(File.ReadAllText(StatePath), Adapter.Json) ?? throw new InvalidDataException("empty state"); }
        catch (JsonException e) { throw new InvalidDataException($"{StatePath}: not a training state ({e.Message}).", e); }
        if (state.Method != tuning.Method.ToString() || state.MemoryTokens != tuning.MemoryTokens || state.Masked != tuning.Masked)
            throw new InvalidDataException($"{StatePath} was written for method {state.Method} (m={state.MemoryTokens}, masked={state.Masked}), not {tuning.Method} (m={tuning.MemoryTokens}, masked={tuning.Masked}).");
        var tensors = SafeTensorsFile.Read(Path.Combine(Directory, state.ParamsFile)).Tensors;
        foreach (var p in model.Parameters)
        {
            if (!tensors.TryGetValue(p.Name, out var t) || !t.ShapeEquals(p.Value.Shape))
                throw new InvalidDataException($"{state.ParamsFile} in {Directory} has no tensor '{p.Name}' of shape {p.Value.ShapeString}.");
            t.Data.CopyTo(p.Value.Data, 0);
        }
        optimizer.LoadState(SafeTensorsFile.Read(Path.Combine(Directory, state.OptimizerFile)).Tensors, state.Steps);
        history.Clear();
        history.AddRange(state.History);
        return state.EpochsDone;
    }
}
