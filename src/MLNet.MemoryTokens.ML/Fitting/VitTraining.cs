using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Hosting;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML.Fitting;

/// <summary>What a fit produced: the trained model and adapter, the backbone it runs on, how it reads images, and the
/// label's key type.</summary>
internal sealed record VitFitResult(Backbone Backbone, TrainingResult Training, ImageInput Input, LabelKeys Keys);

/// <summary>The one training path behind every estimator here: read the view into the engine's dataset (row order kept),
/// then hand it to the engine's own <see cref="Trainer.Train(Backbone, IImageDataset, IImageDataset?, TuningOptions, TrainingOptions)"/>,
/// which prepares the pixels, holds out validation and trains exactly as it does for any other dataset.</summary>
internal static class VitTraining
{
    public static VitFitResult Fit(IHostEnvironment? env, string component, VitTuningOptionsBase options, TuningOptions tuning, IDataView train, IDataView? validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        tuning.Validate();
        options.ToTrainingOptions(0, null, default).Validate();   // fail before reading the data
        using var log = new ComponentLog(env, component);
        var backbone = BackboneCache.Resolve(options.Backbone, options.BackbonePath, options.ImageSize);
        if (TuningMethods.Get(tuning.Method).TrainsBackbone && options.Backend == TuningMethods.ManagedBackend)
        {
            // full fine-tuning rewrites the weights in place; other components may share this backbone
            backbone = BackboneCache.PrivateCopy(backbone);
            log.Info("Full fine-tuning trains a private copy of the backbone.");
        }
        var input = new ImageInput(options.ImageColumnName, options.ImageFolder, Trainer.TrainingPreprocess(backbone));
        var label = train.Schema.GetColumnOrNull(options.LabelColumnName) ?? throw SchemaShapes.Missing(options.LabelColumnName, "label", SchemaShapes.KeyLabelType);
        var keys = LabelKeys.From(label);
        int seed = options.Seed ?? env?.Register(ComponentLog.HostName).Rand.Next() ?? 0;

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        var relay = new TrainingProgressRelay(log, options.Progress, MLContextBridge.CancellationProbe(env), cancel);
        var trainImages = DataViewImageDataset.Read(train, input, options.LabelColumnName, keys, log, "training", cancel.Token);
        var validationImages = validation is null ? null : DataViewImageDataset.Read(validation, input, options.LabelColumnName, keys, log, "validation", cancel.Token);
        var training = options.ToTrainingOptions(seed, relay, cancel.Token);
        if (validationImages is null && training.ValidationFraction > 0 && trainImages.SplitStratified(training.ValidationFraction, seed).Validation.Count == 0)
        {
            // too few rows per class to hold any out: train without validation (the engine would score an empty set as NaN)
            log.Warning($"ValidationFraction {training.ValidationFraction} holds out no row of {trainImages.Count}; training without validation.");
            training = training with { ValidationFraction = 0 };
        }

        int s = input.Size;
        log.Info($"{component}: {tuning.Method} on {backbone.Source} at {s}×{s}, {trainImages.Count} training rows, {keys.Count} classes, seed {seed}, compute {training.Compute}.");
        var result = ParallelRows.Unwrap(() => Trainer.Train(backbone, trainImages, validationImages, tuning, training));
        var last = result.History[^1];
        log.Info($"{component}: done, train accuracy {last.TrainAccuracy:P2}" + (last.ValidationAccuracy is double acc ? $", validation accuracy {acc:P2}." : "."));
        return new VitFitResult(backbone, result, input, keys);
    }
}
