// A small AutoML sweep on Fashion-MNIST: the memory-token trainer as a sweepable estimator over memory tokens, learning
// rate and epochs (MLNet.MemoryTokens.AutoML), three trials on a slice of the data, scored by MicroAccuracy on held-out images.
//   dotnet run --project samples/AutoMLSweep -c Release [-- --automl-seconds 600 --image-size 112 ...]
using System.Diagnostics;
using FashionMnistMlNet;
using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;
using MLNet.MemoryTokens.AutoML;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.Model;

SampleArguments a;
try { a = SampleArguments.Parse(args); }
catch (SampleArguments.HelpRequested) { Console.WriteLine(SampleArguments.Usage); return 0; }
catch (Exception e) when (e is ArgumentException or FormatException) { Console.Error.WriteLine($"error: {e.Message}\n\n{SampleArguments.Usage}"); return 2; }
try
{
    var (train, test, source) = SampleData.Open(a);
    var ml = new MLContext(seed: a.Seed);
    var backbone = Backbone.Load(SampleData.Model(a), new BackboneOptions { ImageSize = a.ImageSize, DropHead = true });
    Console.WriteLine($"data {source}, backbone {SampleData.Model(a)} at {a.ImageSize}×{a.ImageSize}");
    AutoMLSweep.Run(ml, backbone, train, test, a);
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

/// <summary>A small AutoML sweep: the memory-token trainer as a sweepable estimator over memory tokens,
/// learning rate and epochs, three trials on a slice of the data, scored by MicroAccuracy on held-out images.</summary>
static class AutoMLSweep
{
    public static void Run(MLContext ml, Backbone backbone, IImageDataset train, IImageDataset test, SampleArguments a)
    {
        const int trials = 3;
        int trainImages = Math.Min(400, train.Count), validationImages = Math.Min(200, test.Count);
        Console.WriteLine($"[automl] {trials} trials on {trainImages} train / {validationImages} validation images, budget {a.AutoMLSeconds} s");
        var trainView = SampleData.ToDataView(ml, train.Take(trainImages));
        var validationView = SampleData.ToDataView(ml, test.Take(validationImages));

        // What stays fixed in every trial: the shared backbone, the batch, the seed; no inner hold-out (AutoML validates).
        var baseline = new MemoryTokensTrainer.Options { Backbone = backbone, BatchSize = a.BatchSize, Seed = a.Seed, ValidationFraction = 0, InferenceBatchSize = a.BatchSize };
        // The package's search space, narrowed to a budget that fits a sample run.
        var space = new SearchSpace<MemoryTokensSearchSpace>();
        space["MemoryTokens"] = new UniformIntOption(1, 8, logBase: true, defaultValue: a.MemoryTokens);
        space["LearningRate"] = new UniformSingleOption(3e-4f, 3e-3f, logBase: true, defaultValue: a.LearningRate);
        space["Epochs"] = new UniformIntOption(1, 2, defaultValue: 1);

        var monitor = new TrialPrinter();
        var sweepable = ml.Auto().MemoryTokens(baseline, space, p => monitor.Current = p);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", keyData: SampleData.ClassOrder(ml, train))
            .Append(sweepable)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var experiment = ml.Auto().CreateExperiment()
            .SetPipeline(pipeline)
            .SetMulticlassClassificationMetric(MulticlassClassificationMetric.MicroAccuracy, labelColumn: "Label")
            .SetDataset(trainView, validationView)
            .SetRandomSearchTuner(seed: a.Seed)   // three trials: spread them over the space rather than start at the defaults
            .SetMaxModelToExplore(trials)
            .SetTrainingTimeInSeconds((uint)a.AutoMLSeconds)
            .SetMonitor(monitor);
        var watch = Stopwatch.StartNew();
        var best = experiment.RunAsync().GetAwaiter().GetResult();
        Console.WriteLine($"[automl] best: trial {best.TrialSettings.TrialId}, MicroAccuracy {best.Metric:F4} — {monitor.Describe(best.TrialSettings.TrialId)} ({watch.Elapsed.TotalSeconds:F1} s)");
    }

    /// <summary>Prints each finished trial with the values our factory received for it.</summary>
    sealed class TrialPrinter : IMonitor
    {
        readonly Dictionary<int, string> _settings = new();
        public MemoryTokensSearchSpace? Current { get; set; }

        public string Describe(int trial) => _settings.GetValueOrDefault(trial, "?");

        public void ReportRunningTrial(TrialSettings settings) { }
        public void ReportBestTrial(TrialResult result) { }
        public void ReportFailTrial(TrialSettings settings, Exception? exception = null) =>
            Console.WriteLine($"[automl] trial {settings.TrialId} failed: {exception?.Message}");

        public void ReportCompletedTrial(TrialResult result)
        {
            var p = Current;
            var text = p is null ? "?" : $"memory tokens {p.MemoryTokens}, learning rate {p.LearningRate:G3}, epochs {p.Epochs}";
            _settings[result.TrialSettings.TrialId] = text;
            Console.WriteLine($"[automl] trial {result.TrialSettings.TrialId}: {text} → MicroAccuracy {result.Metric:F4} ({result.DurationInMilliseconds / 1000.0:F1} s)");
        }
    }
}
