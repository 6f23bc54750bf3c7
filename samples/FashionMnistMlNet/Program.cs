// Fashion-MNIST with memory tokens, twice: through the engine's own API and through an ML.NET pipeline, with the same
// backbone object, seed and options. Both paths train on the same prepared pixels in the same order, so they learn the
// same bits and score the same test accuracy; the sample prints both, the pixel fingerprints, and the time taken.
using System.Diagnostics;
using FashionMnistMlNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

SampleArguments a;
try { a = SampleArguments.Parse(args); }
catch (SampleArguments.HelpRequested) { Console.WriteLine(SampleArguments.Usage); return 0; }
catch (Exception e) when (e is ArgumentException or FormatException) { Console.Error.WriteLine($"error: {e.Message}\n\n{SampleArguments.Usage}"); return 2; }

try { return Run(a); }
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static int Run(SampleArguments a)
{
    var total = Stopwatch.StartNew();
    var (train, test, source) = SampleData.Open(a);
    var modelPath = SampleData.Model(a);
    Console.WriteLine($"data     {source}: {train.Count} train / {test.Count} test images, {train.ClassNames.Count} classes");
    Console.WriteLine($"backbone {modelPath} at {a.ImageSize}×{a.ImageSize}");
    Console.WriteLine($"training memory tokens m={a.MemoryTokens}, {a.Epochs} epochs, batch {a.BatchSize}, lr {a.LearningRate:G3}, seed {a.Seed} (other settings: engine defaults)");
    Console.WriteLine();

    // One backbone object, shared by both paths (the ML.NET trainer takes it as is instead of loading its own copy).
    var backbone = Backbone.Load(modelPath, new BackboneOptions { ImageSize = a.ImageSize, DropHead = true });
    var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = a.MemoryTokens };
    var training = new TrainingOptions { Epochs = a.Epochs, BatchSize = a.BatchSize, LearningRate = a.LearningRate, Seed = a.Seed };

    // 1. The engine's API.
    Console.WriteLine("[engine] Trainer.Train(backbone, train, null, tuning, options)");
    var watch = Stopwatch.StartNew();
    var engine = Trainer.Train(backbone, train, null, tuning, training with { Progress = new EpochPrinter("[engine]") });
    var engineMetrics = Trainer.Evaluate(engine.Model, PreparedImages.From(test, Trainer.TrainingPreprocess(backbone)), a.BatchSize);
    var engineTime = watch.Elapsed;
    Console.WriteLine($"[engine] test accuracy {engineMetrics.Accuracy:F4} ({Math.Round(engineMetrics.Accuracy * test.Count)}/{test.Count}) in {engineTime.TotalSeconds:F1} s");
    Console.WriteLine();

    // 2. ML.NET: MLImage rows → MapValueToKey (class order = the dataset's) → MemoryTokens → MapKeyToValue; Evaluate.
    Console.WriteLine("[ml.net] MapValueToKey → MulticlassClassification.Trainers.MemoryTokens → MapKeyToValue");
    watch.Restart();
    var ml = new MLContext(seed: a.Seed);
    ml.Log += (_, e) =>
    {
        if (e.Kind >= ChannelMessageKind.Info && e.Source.StartsWith("MLNet.MemoryTokens", StringComparison.Ordinal)) Console.WriteLine($"[ml.net] {e.RawMessage}");
    };
    var trainView = SampleData.ToDataView(ml, train);
    var testView = SampleData.ToDataView(ml, test);
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", keyData: SampleData.ClassOrder(ml, train))
        .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
        {
            Backbone = backbone, MemoryTokens = a.MemoryTokens, Epochs = a.Epochs, BatchSize = a.BatchSize, LearningRate = a.LearningRate,
            Seed = a.Seed, InferenceBatchSize = a.BatchSize,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    var model = pipeline.Fit(trainView);
    var metrics = ml.MulticlassClassification.Evaluate(model.Transform(testView));
    var mlnetTime = watch.Elapsed;
    Console.WriteLine($"[ml.net] test MicroAccuracy {metrics.MicroAccuracy:F4} ({Math.Round(metrics.MicroAccuracy * test.Count)}/{test.Count}), MacroAccuracy {metrics.MacroAccuracy:F4}, LogLoss {metrics.LogLoss:F4} in {mlnetTime.TotalSeconds:F1} s");
    Console.WriteLine();

    // 3. Same pixels, same order, same result.
    var classifier = model.OfType<VitClassifierTransformer>().Single();
    string engineFingerprint = PreparedImages.From(train, Trainer.TrainingPreprocess(backbone)).Fingerprint;
    // what the ML.NET trainer handed the engine: the keyed rows as the engine's dataset, prepared the same way
    var keyedTrain = model.First().Transform(trainView);
    string mlnetFingerprint = PreparedImages.From(keyedTrain.ToImageDataset(backbone), Trainer.TrainingPreprocess(backbone)).Fingerprint;
    bool sameTensors = engine.Adapter.Tensors.All(t => t.Value.Data.AsSpan().SequenceEqual(classifier.Adapter.Tensors[t.Key].Data));
    bool sameAccuracy = engineMetrics.Accuracy == metrics.MicroAccuracy;
    Console.WriteLine($"training pixels  engine {engineFingerprint}  ml.net {mlnetFingerprint}  {(engineFingerprint == mlnetFingerprint ? "identical" : "DIFFERENT")}");
    Console.WriteLine($"trained tensors  {(sameTensors ? "bit-identical" : "DIFFERENT")} ({string.Join(", ", engine.Adapter.Tensors.Select(t => $"{t.Key} {t.Value.ShapeString}"))})");
    Console.WriteLine($"test accuracy    engine {engineMetrics.Accuracy:F4}  ml.net {metrics.MicroAccuracy:F4}  {(sameAccuracy ? "identical" : "DIFFERENT")}");

    // 4. PredictionEngine on one test image, and the whole pipeline saved and loaded back.
    var row = SampleData.ToRow(test, 0);
    var prediction = ml.Model.CreatePredictionEngine<SampleData.FashionRow, Prediction>(model).Predict(row);
    Console.WriteLine($"prediction       test image 0 ({row.Label}): {prediction.PredictedLabel}, p = {prediction.Score.Max():F3}");
    var saved = Path.Combine(Path.GetTempPath(), $"fashion-memorytokens-{Environment.ProcessId}.zip");
    ml.Model.SaveWithAdapters(model, trainView.Schema, saved);
    var reloaded = ml.Model.LoadWithAdapters(saved, out _, backbone);
    var firstScores = model.Transform(SampleData.ToDataView(ml, test.Take(64))).GetColumn<float[]>("Score").ToArray();
    bool sameAfterLoad = reloaded.Transform(SampleData.ToDataView(ml, test.Take(64))).GetColumn<float[]>("Score").ToArray().Zip(firstScores).All(p => p.First.SequenceEqual(p.Second));
    Console.WriteLine($"persistence      SaveWithAdapters → {new FileInfo(saved).Length / 1024.0:F0} KB zip; reloaded scores {(sameAfterLoad ? "identical" : "DIFFERENT")}");
    File.Delete(saved);

    Console.WriteLine();
    Console.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s (engine path {engineTime.TotalSeconds:F1} s, ML.NET path {mlnetTime.TotalSeconds:F1} s)");
    return sameAccuracy && sameTensors && engineFingerprint == mlnetFingerprint ? 0 : 1;
}

sealed class Prediction
{
    public float[] Score { get; set; } = [];
    public string PredictedLabel { get; set; } = "";
}

/// <summary>Prints the engine's per-epoch progress (synchronously, unlike Progress&lt;T&gt;).</summary>
sealed class EpochPrinter(string prefix) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress p)
    {
        if (p.Phase == "epoch")
            Console.WriteLine($"{prefix} epoch {p.Epoch}/{p.Epochs}: train loss {p.Loss:F4}" + (p.ValidationAccuracy is double v ? $", validation loss {p.ValidationLoss:F4}, accuracy {v:P2}" : "") + $", {p.ImagesPerSecond:F1} images/s");
    }
}
