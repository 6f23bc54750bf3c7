using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Compute;
using MLNet.MemoryTokens.TorchSharp;

namespace MLNet.MemoryTokens.TorchSharp.Bench;

/// <summary>One measured figure: images per second (median call), the median call's time, peak host memory during the timed calls.</summary>
public sealed record TorchBenchFigure(string Name, string Device, string Precision, int Batch, double ImagesPerSecond, double MedianMilliseconds, int Calls, double PeakRssMb);

/// <summary>The TorchSharp backend's figures, measured the way the engine's <c>mmt bench</c> measures its own (median of repeated
/// calls after a warm-up of at least 2 calls and 2 seconds; peak resident memory of the timed calls): inference, one training
/// step of a method exactly as the engine's trainer runs it on this backend (the method table's model and step, the loss on
/// the host, the device optimizer's clearing, clipping and AdamW). For <c>mmt bench … --backend torchsharp</c> and
/// <c>samples/gpu</c> (<c>mmt bench memory</c> traces host memory over many trainer steps on either backend).</summary>
public static class TorchBenchmarks
{
    /// <summary>Forward under no_grad: logits of a batch of random normalised images (the backbone needs its head).</summary>
    public static TorchBenchFigure Inference(VisionTransformer backbone, int batch, ComputeOptions compute, double minSeconds = 2)
    {
        var device = TorchBackend.ResolveDevice(compute.Device);
        using var vit = Model.TorchVit.FromEngine(backbone, device);
        vit.Precision = compute.Precision;
        using var images = randn(batch, 3, backbone.Config.ImageSize, backbone.Config.ImageSize, device: device);
        return Measure("inference", device, compute.Precision, batch, minSeconds, () =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            vit.Forward(images);
        });
    }

    /// <summary>One training step of <paramref name="tuning"/>'s method on random images, as the trainer runs it: forward,
    /// label-smoothed cross-entropy, backward, clipping at 1, AdamW. VQT runs from its filled key/value cache (the step every
    /// epoch after the first takes).</summary>
    public static TorchBenchFigure TrainingStep(Backbone backbone, TuningOptions tuning, int batch, ComputeOptions compute, double minSeconds = 2)
    {
        using var run = new StepRun(backbone, tuning, batch, compute, images: batch * 2);
        var batches = new[] { Enumerable.Range(0, batch).ToArray(), Enumerable.Range(batch, batch).ToArray() };
        foreach (var b in batches) run.Step(b);   // fills a VQT cache
        int call = 0;
        return Measure($"{TuningMethods.Get(tuning.Method).Name} training step", run.Device, compute.Precision, batch, minSeconds, () => run.Step(batches[call++ % 2]));
    }

    /// <summary>A method's model, training step and device optimizer from the method table, on random images: one
    /// <see cref="Step"/> is what the engine's trainer does per batch.</summary>
    sealed class StepRun : IDisposable
    {
        readonly ITunedModel _model;
        readonly ITrainingStep _step;
        readonly MLNet.MemoryTokens.Training.Optimizer _optimizer;
        readonly PreparedImages _data;
        public Device Device { get; }

        public StepRun(Backbone backbone, TuningOptions tuning, int batch, ComputeOptions compute, int images)
        {
            TorchSharpBackend.Register();
            var methodCompute = TuningMethods.Compute(tuning.Method, compute);
            Device = ((TorchMethodCompute)methodCompute).Device;
            _data = RandomImages(backbone, images, classes: 10);
            _model = methodCompute.CreateModel(backbone.Model, tuning, 10, seed: 0);
            _step = methodCompute.CreateTrainingStep(_model, new StepContext(backbone, _data, tuning, batch, default));
            _optimizer = ((IDeviceTrainingStep)_step).CreateOptimizer(OptimizerKind.AdamW, 0.05f, 0.9f);
        }

        public void Step(int[] indices)
        {
            var logits = _step.Forward(indices);
            var dLogits = new MLNet.MemoryTokens.Tensor(logits.Shape);
            CrossEntropy.Compute(logits.Data, indices.Select(i => _data.Labels[i]).ToArray(), 10, 0.1f, dLogits.Data);
            _optimizer.ClearGradients(_step.Parameters);
            _step.Backward(dLogits);
            _optimizer.ClipGradients(_step.Parameters, 1f);
            _optimizer.Step(_step.Parameters, 1e-4f);
        }

        public void Dispose()
        {
            _step.Dispose();
            (_model as IDisposable)?.Dispose();
        }
    }

    /// <summary>Random images with random labels, prepared as the trainer prepares a data set.</summary>
    public static PreparedImages RandomImages(Backbone backbone, int count, int classes)
    {
        int s = backbone.Model.Config.ImageSize;
        return PreparedImages.From(new RandomDataset(count, classes, s), backbone.Preprocess with { InputSize = s, CropFraction = 1 });
    }

    sealed class RandomDataset(int count, int classes, int size) : IImageDataset
    {
        public int Count => count;
        public IReadOnlyList<string> ClassNames { get; } = Enumerable.Range(0, classes).Select(c => $"class{c}").ToArray();
        public int LabelOf(int index) => index % classes;
        public string SourceOf(int index) => $"random#{index}";
        public RgbImage Load(int index)
        {
            var pixels = new byte[size * size * 3];
            new Random(index).NextBytes(pixels);
            return new RgbImage(size, size, pixels);
        }
    }

    static TorchBenchFigure Measure(string name, Device device, ComputePrecision precision, int batch, double minSeconds, Action call)
    {
        void Sync() { if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device); }
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.Elapsed.TotalSeconds < minSeconds; i++) { call(); Sync(); }
        ResetPeakRss();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 3 || total.Elapsed.TotalSeconds < minSeconds)
        {
            var w = Stopwatch.StartNew();
            call();
            Sync();
            times.Add(w.Elapsed.TotalSeconds);
        }
        times.Sort();
        double median = times[times.Count / 2];
        return new TorchBenchFigure(name, device.ToString(), precision.ToString(), batch, batch / median, median * 1e3, times.Count, PeakRssMb());
    }

    /// <summary>Resets the kernel's peak-RSS counter (VmHWM) of this process (Linux: writing 5 to /proc/self/clear_refs).</summary>
    static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static double PeakRssMb()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) return double.Parse(line[6..].Trim().Split(' ')[0]) / 1024;
        }
        catch (IOException) { }
        return Process.GetCurrentProcess().PeakWorkingSet64 / 1e6;
    }
}
