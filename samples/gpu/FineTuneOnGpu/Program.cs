// Fine-tune on a GPU, serve anywhere: memory tokens trained through an ML.NET pipeline on the TorchSharp backend (CUDA when
// present, with --bf16 autocast if asked), the adapter saved, then loaded and scored by the managed engine (no native library)
// — the same accuracy from the same folder. The command-line equivalent:
//   mmt train -m <checkpoint> -d <data> --backend torchsharp --device cuda -o adapter
//   mmt evaluate -m <checkpoint> -a adapter -d <data>:test            (managed engine)
//
//   samples/gpu/fine-tune.sh [--device auto|cuda|cpu] [--bf16] [--data <idx folder>] [--epochs 2] [--train n] [--test n] …
using System.Diagnostics;
using FashionMnistMlNet;
using Microsoft.ML;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.Tuning;

string device = "auto";
bool bf16 = false;
var rest = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--device" && i + 1 < args.Length) device = args[++i];
    else if (args[i] == "--bf16") bf16 = true;
    else rest.Add(args[i]);
}
SampleArguments a;
try { a = SampleArguments.Parse([.. rest]); }
catch (SampleArguments.HelpRequested) { Console.WriteLine("FineTuneOnGpu [--device auto|cuda|cpu] [--bf16]\n" + SampleArguments.Usage); return 0; }
catch (Exception e) when (e is ArgumentException or FormatException) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }

try
{
    // once at start-up: the TorchSharp backend joins the method table under the name "torchsharp"
    TorchSharpBackend.Register();
    var resolved = TorchBackend.ResolveDevice(device);
    var (train, test, source) = SampleData.Open(a);
    var backbone = Backbone.Load(SampleData.Model(a), new BackboneOptions { ImageSize = a.ImageSize, DropHead = true });
    Console.WriteLine($"data {source}: {train.Count} train / {test.Count} test; backbone {backbone.Source} at {a.ImageSize}; TorchSharp on {resolved}{(bf16 ? ", bf16 autocast" : "")}");

    var ml = new MLContext(seed: a.Seed);
    var trainView = SampleData.ToDataView(ml, train);
    var testView = SampleData.ToDataView(ml, test);
    var labels = ml.Transforms.Conversion.MapValueToKey("Label", keyData: SampleData.ClassOrder(ml, train));
    var watch = Stopwatch.StartNew();
    var model = labels.Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
    {
        Backbone = backbone, MemoryTokens = a.MemoryTokens, Epochs = a.Epochs, BatchSize = a.BatchSize, LearningRate = a.LearningRate, Seed = a.Seed,
        Backend = TorchSharpBackend.Name, Device = device, Precision = bf16 ? ComputePrecision.BFloat16 : ComputePrecision.Float32,
        Progress = new Progress<MLNet.MemoryTokens.Training.TrainingProgress>(p => { if (p.Phase == "epoch") Console.WriteLine($"  epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}, {p.ImagesPerSecond:F1} img/s"); }),
    })).Fit(trainView);
    var onDevice = ml.MulticlassClassification.Evaluate(model.Transform(testView));
    Console.WriteLine($"trained and scored on {resolved}: test accuracy {onDevice.MicroAccuracy:P2} ({watch.Elapsed.TotalSeconds:F0} s)");

    // the adapter folder is the interchange format: the managed engine serves it with no native library
    var folder = Path.Combine(Path.GetTempPath(), $"fine-tune-on-gpu-{Environment.ProcessId}");
    model.LastTransformer.SaveAdapter(folder);
    var served = ml.MulticlassClassification.Trainers.LoadMemoryTokens(folder, backbone);   // managed (the default compute)
    var onEngine = ml.MulticlassClassification.Evaluate(served.Transform(labels.Fit(testView).Transform(testView)));
    Console.WriteLine($"the same adapter on the managed engine: test accuracy {onEngine.MicroAccuracy:P2} ({folder})");
    Directory.Delete(folder, recursive: true);
    return Math.Abs(onDevice.MicroAccuracy - onEngine.MicroAccuracy) <= (bf16 ? 0.01 : 0.002) ? 0 : 1;
}
catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or NotSupportedException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
