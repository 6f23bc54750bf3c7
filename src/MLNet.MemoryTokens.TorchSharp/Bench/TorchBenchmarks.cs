using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Bench;

/// <summary>One measured figure: images per second (median call), the median call's time, peak host memory during the timed calls.</summary>
public sealed record TorchBenchFigure(string Name, string Device, string Precision, int Batch, double ImagesPerSecond, double MedianMilliseconds, int Calls, double PeakRssMb);

/// <summary>The TorchSharp backend's figures, measured the way the engine's <c>mmt bench</c> measures its own (median of repeated
/// calls after a warm-up of at least 2 calls and 2 seconds; peak resident memory of the timed calls): inference, one training
/// step per method (the trainer's own step: loss, backward, clipping, AdamW), and host memory over many steps. For
/// <c>mmt bench … --backend torchsharp</c> (phase 2) and <c>samples/gpu</c>.</summary>
public static class TorchBenchmarks
{
    /// <summary>Forward under no_grad: logits of a batch of random normalised images.</summary>
    public static TorchBenchFigure Inference(Backbone backbone, int batch, TorchBackendOptions backend, double minSeconds = 2)
    {
        var device = TorchBackend.Prepare(backend);
        using var vit = Model.TorchVit.FromEngine(backbone.Model, device);
        vit.Precision = backend.Precision;
        using var images = randn(batch, 3, backbone.Model.Config.ImageSize, backbone.Model.Config.ImageSize, device: device);
        return Measure("inference", device, backend.Precision, batch, minSeconds, () =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            vit.Forward(images);
        });
    }

    /// <summary>One training step of <paramref name="tuning"/>'s method (forward, label-smoothed loss, backward, clipping, AdamW)
    /// on a batch of random images; VQT runs from its filled key/value cache (the step every epoch after the first takes).</summary>
    public static TorchBenchFigure TrainingStep(Backbone backbone, TuningOptions tuning, int batch, TorchBackendOptions backend, double minSeconds = 2)
    {
        var device = TorchBackend.Prepare(backend);
        var data = RandomImages(backbone, batch * 2, classes: 10);
        var options = new TrainingOptions { BatchSize = batch };
        using var model = TorchTuning.Create(backbone, tuning, 10, seed: 0, device, backend.Precision);
        using var step = TorchTrainer.CreateStep(model, data, tuning, options, backend);
        using var optimizer = TorchOptimizer.Create(OptimizerKind.AdamW, model.Trainable, 0.05f);
        var batches = new[] { Enumerable.Range(0, batch).ToArray(), Enumerable.Range(batch, batch).ToArray() };
        foreach (var b in batches) TorchTrainer.TrainStep(step, model, b, data.Labels, options, optimizer, 1e-4f);   // fills a VQT cache
        int call = 0;
        string name = tuning.Method switch
        {
            TuningMethod.Memory => $"memory-token step (m = {tuning.MemoryTokens})",
            TuningMethod.Vqt => $"VQT step from the {tuning.CacheDType} cache (T = {tuning.QueryTokens})",
            TuningMethod.Full => "full fine-tuning step",
            _ => $"{tuning.Method} step",
        };
        return Measure(name, device, backend.Precision, batch, minSeconds, () => TorchTrainer.TrainStep(step, model, batches[call++ % 2], data.Labels, options, optimizer, 1e-4f));
    }

    /// <summary>Resident host memory every <paramref name="every"/> steps over <paramref name="steps"/> training steps (MB): flat
    /// when nothing leaks per step.</summary>
    public static IReadOnlyList<(int Step, double RssMb)> HostMemory(Backbone backbone, TuningOptions tuning, int batch, int steps, TorchBackendOptions backend, int every = 50)
    {
        var device = TorchBackend.Prepare(backend);
        var data = RandomImages(backbone, batch * 4, classes: 10);
        var options = new TrainingOptions { BatchSize = batch };
        using var model = TorchTuning.Create(backbone, tuning, 10, seed: 0, device, backend.Precision);
        using var step = TorchTrainer.CreateStep(model, data, tuning, options, backend);
        using var optimizer = TorchOptimizer.Create(OptimizerKind.AdamW, model.Trainable, 0.05f);
        var trace = new List<(int, double)>();
        for (int s = 1; s <= steps; s++)
        {
            TorchTrainer.TrainStep(step, model, Enumerable.Range((s % 4) * batch, batch).ToArray(), data.Labels, options, optimizer, 1e-4f);
            if (s % every == 0) trace.Add((s, Environment.WorkingSet / 1e6));
        }
        return trace;
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
