// The TorchSharp backend's check on a GPU (samples/gpu/check.sh): loads ViT-B/16-shaped weights (random, or --model a
// checkpoint), trains memory tokens for a moment, and prints images/s for inference and the memory-token, VQT and full
// fine-tuning training steps, in float32 and bf16 autocast. Also runs on the CPU (--device cpu), which is how the CPU
// figures in docs/torchsharp.md were taken.
using System.Diagnostics;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp;
using MLNet.MemoryTokens.TorchSharp.Bench;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

string device = "auto", model = "vit-b16-random";
int batch = 64, imageSize = 224, memory = 5, threads = 0, trainImages = 512;
bool bf16 = true, fp32 = true, quick = false;
double seconds = 3;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--device": device = Next(); break;
        case "--model": model = Next(); break;
        case "--batch": batch = int.Parse(Next()); break;
        case "--image-size": imageSize = int.Parse(Next()); break;
        case "--threads": threads = int.Parse(Next()); break;
        case "--seconds": seconds = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
        case "--fp32-only": bf16 = false; break;
        case "--bf16-only": fp32 = false; break;
        case "--quick": quick = true; break;
        case "-h" or "--help":
            Console.WriteLine("samples/gpu/check.sh [--device auto|cuda|cpu] [--model vit-b16-random|<checkpoint or timm id>] [--batch 64] [--image-size 224] [--threads n] [--seconds 3] [--fp32-only|--bf16-only] [--quick]");
            return 0;
        default: Console.Error.WriteLine($"error: unknown option '{args[i]}' (--help lists them)"); return 2;
    }
}

try
{
    TorchSharpBackend.Register();
    var backend = TorchSharpBackend.On(device);
    var resolved = TorchBackend.ResolveDevice(device);
    if (threads > 0) TorchBackend.SetThreads(threads);
    Console.WriteLine($"TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}, device {resolved}, CUDA available: {TorchSharp.torch.cuda.is_available()}");
    var watch = Stopwatch.StartNew();
    Backbone backbone;
    if (model == "vit-b16-random")
    {
        // ViT-B/16's shapes (86 M weights); random values: the figures depend on shapes, not values
        var config = new VitConfig { ImageSize = imageSize, PatchSize = 16, Dim = 768, Depth = 12, Heads = 12, MlpDim = 3072, NumClasses = 1000 };
        var vit = VisionTransformer.CreateRandom(config, seed: 0);
        backbone = new Backbone(vit, new PreprocessConfig { InputSize = imageSize }, model, Backbone.ComputeFingerprint(vit.Parameters));
    }
    else backbone = Backbone.Load(model, new BackboneOptions { ImageSize = imageSize });
    var c = backbone.Model.Config;
    Console.WriteLine($"backbone {model}: D {c.Dim}, depth {c.Depth}, heads {c.Heads}, {c.ImageSize}×{c.ImageSize} ({watch.Elapsed.TotalSeconds:F1} s to build)");

    // a short memory-token training run through the engine's trainer on this backend (random images and labels: it shows the
    // loop runs, not accuracy)
    var data = TorchBenchmarks.RandomImages(backbone, quick ? batch * 2 : trainImages, classes: 10);
    var run = Trainer.Train(backbone, data, null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = memory },
        new TrainingOptions
        {
            Epochs = 2, BatchSize = batch, LearningRate = 1e-3f,
            Compute = backend with { Precision = bf16 && !fp32 ? ComputePrecision.BFloat16 : ComputePrecision.Float32 },
            Progress = new Progress<TrainingProgress>(p => { if (p.Phase == "epoch") Console.WriteLine($"  memory tokens, epoch {p.Epoch}: loss {p.Loss:F3}, {p.ImagesPerSecond:F1} img/s"); }),
        });
    ((IDisposable)run.Model).Dispose();

    var precisions = new List<ComputePrecision>();
    if (fp32) precisions.Add(ComputePrecision.Float32);
    if (bf16 && resolved.type == TorchSharp.DeviceType.CUDA) precisions.Add(ComputePrecision.BFloat16);
    else if (bf16 && !fp32) precisions.Add(ComputePrecision.BFloat16);
    Console.WriteLine();
    Console.WriteLine($"| figure | precision | batch | images/s | ms per call | calls | peak host RSS MB |");
    Console.WriteLine($"|---|---|---:|---:|---:|---:|---:|");
    foreach (var precision in precisions)
    {
        var b = backend with { Precision = precision };
        var figures = new List<Func<TorchBenchFigure>>
        {
            () => TorchBenchmarks.Inference(backbone.Model, batch, b, seconds),
            () => TorchBenchmarks.TrainingStep(backbone, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = memory }, batch, b, seconds),
            () => TorchBenchmarks.TrainingStep(backbone, new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 1 }, batch, b, seconds),
            () => TorchBenchmarks.TrainingStep(backbone, new TuningOptions { Method = TuningMethod.Full }, batch, b, seconds),
        };
        foreach (var f in figures)
        {
            var r = f();
            Console.WriteLine($"| {r.Name} | {r.Precision} | {r.Batch} | {r.ImagesPerSecond:F1} | {r.MedianMilliseconds:F1} | {r.Calls} | {r.PeakRssMb:F0} |");
        }
    }
    if (bf16 && fp32 && resolved.type != TorchSharp.DeviceType.CUDA) Console.WriteLine("(bf16 autocast is for CUDA; pass --bf16-only to time it on the CPU anyway)");
    return 0;
}
catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or FormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
