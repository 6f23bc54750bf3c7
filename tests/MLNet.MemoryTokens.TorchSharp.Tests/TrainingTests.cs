using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using Xunit.Abstractions;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Compute;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The engine's own trainer on the TorchSharp backend (the method table's compute, the device optimizer): the same
/// numbers as on the managed engine, checkpoint/resume in both directions, cancellation, flat memory, and a short real
/// training on the shipped Fashion-MNIST sample.</summary>
[Collection(SerialCollection.Name)]   // the memory test reads the process's resident set: nothing else may run beside it
public sealed class TrainingTests(ITestOutputHelper output) : IDisposable
{
    static readonly string Sample = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mmt-ts-train-" + Guid.NewGuid().ToString("N")[..8]);
    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static readonly Lazy<PreparedImages> TinySample = new(() =>
        PreparedImages.From(ImageDatasets.Open(Sample), new PreprocessConfig { InputSize = 16, CropFraction = 1 }).Subset(Enumerable.Range(0, 320).ToArray()));

    /// <summary>The first <paramref name="count"/> (≤ 320) sample images at 16×16 (the tiny ViT's input).</summary>
    internal static PreparedImages Tiny(int count) => TinySample.Value.Subset(Enumerable.Range(0, count).ToArray());

    static TrainingOptions OnTorch(TrainingOptions o) => o with { Compute = TinyModels.Cpu };

    /// <summary>Every method, one epoch of four steps (AdamW, warm-up, clipping, label smoothing) and a validation, through the
    /// same trainer on both backends: the epoch's loss and accuracy, the validation figures and every trained tensor agree.</summary>
    [Theory]
    [MemberData(nameof(MethodParityTests.Methods), MemberType = typeof(MethodParityTests))]
    public void OneEpochEqualsTheEngines(string method)
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(64);
        var validation = TinySample.Value.Subset(Enumerable.Range(64, 40).ToArray());
        var tuning = MethodParityTests.Tuning(method, backbone);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, LearningRate = 1e-3f, Seed = 5 };
        var engine = Trainer.Train(backbone, data, validation, tuning, options);
        var torch = Trainer.Train(backbone, data, validation, tuning, OnTorch(options));
        using var _ = (IDisposable)torch.Model;
        Assert.IsType<TorchEngineModel>(torch.Model, exactMatch: false);
        var (e, t) = (engine.History[0], torch.History[0]);
        Assert.True(Math.Abs(e.TrainLoss - t.TrainLoss) < 1e-4, $"{method} epoch loss: engine {e.TrainLoss}, TorchSharp {t.TrainLoss}");
        Assert.Equal(e.TrainAccuracy, t.TrainAccuracy);
        Assert.True(Math.Abs(e.ValidationLoss!.Value - t.ValidationLoss!.Value) < 1e-4, $"{method} validation loss: engine {e.ValidationLoss}, TorchSharp {t.ValidationLoss}");
        // after four AdamW steps the tensors agree to a small fraction of the learning rate
        Assert.Equal(engine.Adapter.Tensors.Keys.Order(), torch.Adapter.Tensors.Keys.Order());
        foreach (var (name, tensor) in engine.Adapter.Tensors)
            TinyModels.AssertClose(tensor.Data, torch.Adapter.Tensors[name].Data, 2e-4, 1e-4, $"trainer, {method}: tensor {name} after one epoch");
        Assert.Equal(engine.Adapter.Config.Method, torch.Adapter.Config.Method);
        Assert.Equal(engine.Adapter.Config.ClassLabels, torch.Adapter.Config.ClassLabels);
        Assert.Equal("torchsharp", torch.Adapter.Config.Training["compute"].GetProperty("Backend").GetString());
        Assert.False(engine.Adapter.Config.Training.ContainsKey("compute"));
    }

    /// <summary>One optimizer step of the trainer with SGD: the device optimizer's updated tensors equal the engine's.</summary>
    [Fact]
    public void OneSgdStepThroughTheTrainerEqualsTheEngines()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(16);
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, LearningRate = 1e-2f, WarmupEpochs = 0, Optimizer = OptimizerKind.Sgd, WeightDecay = 0.1f, ValidationFraction = 0 };
        var engine = Trainer.Train(backbone, data, null, tuning, options);
        var torch = Trainer.Train(backbone, data, null, tuning, OnTorch(options));
        foreach (var (name, tensor) in engine.Adapter.Tensors)
            TinyModels.AssertClose(tensor.Data, torch.Adapter.Tensors[name].Data, 1e-6, 1e-5, $"trainer, one SGD step: tensor {name}");
    }

    /// <summary>Checkpoints are one format: a run checkpointed on TorchSharp resumes on TorchSharp and on the engine, and one
    /// checkpointed on the engine resumes on TorchSharp, each ending where the uninterrupted run ends.</summary>
    [Fact]
    public void ResumeContinuesAcrossBackends()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(48);
        var tuning = new TuningOptions { Method = TuningMethod.HeadAndClassToken };
        var baseOptions = new TrainingOptions { Epochs = 2, BatchSize = 16, LearningRate = 1e-3f, Seed = 1 };
        var straight = Trainer.Train(backbone, data, null, tuning, OnTorch(baseOptions));

        string Epoch1(string name, bool torch)
        {
            var dir = Path.Combine(_dir, name);
            var o = baseOptions with { Epochs = 1, CheckpointDirectory = dir };
            Trainer.Train(backbone, data, null, tuning, torch ? OnTorch(o) : o);
            Assert.True(File.Exists(Path.Combine(dir, "trainer_state.json")));
            return dir;
        }

        foreach (var (from, to) in new[] { (true, true), (true, false), (false, true) })
        {
            var progress = new List<TrainingProgress>();
            var o = baseOptions with { CheckpointDirectory = Epoch1($"ckpt-{from}-{to}", from), Resume = true, Progress = new SyncProgress(progress) };
            var resumed = Trainer.Train(backbone, data, null, tuning, to ? OnTorch(o) : o);
            Assert.Contains(progress, p => p.Phase == "resume" && p.Epoch == 1);
            Assert.Equal(2, resumed.History.Count);
            string what = $"checkpointed on {(from ? "TorchSharp" : "the engine")}, resumed on {(to ? "TorchSharp" : "the engine")}";
            foreach (var (name, t) in straight.Adapter.Tensors)
                TinyModels.AssertClose(t.Data, resumed.Adapter.Tensors[name].Data, from == to ? 1e-6 : 1e-4, 1e-4, $"{what}: {name}");
        }
    }

    [Fact]
    public void CancellationStopsTraining()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        using var cts = new CancellationTokenSource();
        var options = new TrainingOptions
        {
            Epochs = 3, BatchSize = 8, CancellationToken = cts.Token, Compute = TinyModels.Cpu,
            Progress = new SyncProgress(p => { if (p.Step == 2) cts.Cancel(); }),
        };
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Trainer.Train(backbone, Tiny(32), null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 1 }, options));
    }

    [Fact]
    public void BadDeviceOrBackendIsRefusedByName()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var e = Assert.Throws<ArgumentException>(() => Trainer.Train(backbone, Tiny(8), null, new TuningOptions(), new TrainingOptions { Epochs = 1, Compute = TinyModels.Cpu with { Device = "tpu" } }));
        Assert.Contains("'tpu'", e.Message);
        var unknown = Assert.Throws<InvalidOperationException>(() => Trainer.Train(backbone, Tiny(8), null, new TuningOptions(), new TrainingOptions { Epochs = 1, Compute = new() { Backend = "jax" } }));
        Assert.Contains("'jax'", unknown.Message);
        Assert.Contains("torchsharp", unknown.Message);
        Assert.Contains("TorchSharp backend", Assert.Throws<NotSupportedException>(() => new ComputeOptions { Device = "cuda" }.Validate()).Message);
        Assert.Contains("bf16", Assert.Throws<NotSupportedException>(() => new ComputeOptions { Precision = ComputePrecision.BFloat16 }.Validate()).Message);
        bool cuda = global::TorchSharp.torch.cuda.is_available();
        if (!cuda) Assert.Contains("CUDA is not available", Assert.Throws<InvalidOperationException>(() => TorchBackend.ResolveDevice("cuda")).Message);
        Assert.Equal(cuda ? global::TorchSharp.DeviceType.CUDA : global::TorchSharp.DeviceType.CPU, TorchBackend.ResolveDevice("auto").type);
        // every method has its TorchSharp compute in the table, bound to the device asked for
        foreach (var m in TuningMethods.All)
            Assert.Equal(global::TorchSharp.DeviceType.CPU, ((TorchMethodCompute)TuningMethods.Compute(m.Method, TinyModels.Cpu)).Device.type);
    }

    /// <summary>Host memory over 500 training steps of the engine's trainer on TorchSharp stays flat: after a warm-up, the
    /// resident set grows by less than 40 MB (a leak of one activation per step would add hundreds).</summary>
    [Fact]
    public void HostMemoryIsFlatOver500Steps()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(320);
        var rss = new Dictionary<long, long>();
        var options = new TrainingOptions
        {
            Epochs = 50, BatchSize = 32, LearningRate = 1e-4f, ValidationFraction = 0, Compute = TinyModels.Cpu,
            Progress = new SyncProgress(p =>
            {
                if (p.Phase == "train" && p.Step % 50 == 0) { GC.Collect(); rss[p.Step] = Process.GetCurrentProcess().WorkingSet64; }
            }),
        };
        var result = Trainer.Train(backbone, data, null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 }, options);
        ((IDisposable)result.Model).Dispose();
        Assert.Equal(500, rss.Keys.Max());
        output.WriteLine(string.Join(", ", rss.OrderBy(kv => kv.Key).Select(kv => $"step {kv.Key}: {kv.Value / 1e6:F1} MB")));
        double growth = (rss[500] - rss[100]) / 1e6;
        Assert.True(growth < 40, $"resident memory grew {growth:F1} MB from step 100 to 500");
    }

    /// <summary>The shipped sample, real ViT-Ti/16 at 112: memory tokens (m = 2) trained by both backends through the same
    /// trainer from the same seed on 480 images for 2 epochs reach the same accuracy on 500 test images within 1 point; the
    /// engine serves the TorchSharp adapter, and TorchSharp the engine's, exactly as the backend that trained it.</summary>
    [SharedFact]
    public void FashionSampleAccuracyMatchesTheEngineWithinOnePoint()
    {
        var backbone = Backbone.Load(Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors"),
            new BackboneOptions { ImageSize = 112, DropHead = true });
        var preprocess = Trainer.TrainingPreprocess(backbone);
        var train = PreparedImages.From(ImageDatasets.Open(Sample), preprocess).Subset(Enumerable.Range(0, 480).ToArray());
        var test = PreparedImages.From(ImageDatasets.Open(Sample + ":test"), preprocess).Subset(Enumerable.Range(0, 500).ToArray());
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var options = new TrainingOptions { Epochs = 2, BatchSize = 32, LearningRate = 3e-3f, Seed = 0, ValidationFraction = 0 };
        TorchBackend.SetThreads(Environment.ProcessorCount);
        var w = Stopwatch.StartNew();
        var engine = Trainer.Train(backbone, train, null, tuning, options);
        double engineAcc = Trainer.Evaluate(engine.Model, test).Accuracy, engineSeconds = w.Elapsed.TotalSeconds;
        w.Restart();
        var torch = Trainer.Train(backbone, train, null, tuning, OnTorch(options));
        double torchAcc = Trainer.Evaluate(torch.Model, test).Accuracy, torchSeconds = w.Elapsed.TotalSeconds;
        ((IDisposable)torch.Model).Dispose();
        var (torchFolder, engineFolder) = (Path.Combine(_dir, "fashion-torch"), Path.Combine(_dir, "fashion-engine"));
        torch.Adapter.Save(torchFolder);
        engine.Adapter.Save(engineFolder);
        double served = Trainer.Evaluate(Adapter.Load(torchFolder).CreateModel(backbone), test).Accuracy;
        double servedOnTorch;
        using (var m = TorchSharpBackend.Load(Adapter.Load(engineFolder), backbone, TinyModels.Cpu)) servedOnTorch = Trainer.Evaluate(m, test).Accuracy;
        output.WriteLine($"engine {engineAcc:P2} ({engineSeconds:F0} s), TorchSharp {torchAcc:P2} ({torchSeconds:F0} s), TorchSharp adapter served by the engine {served:P2}, engine adapter served by TorchSharp {servedOnTorch:P2}");
        ParityLog.Record($"fashion sample accuracy engine {engineAcc:P2} TorchSharp {torchAcc:P2} served {served:P2} engine-on-torch {servedOnTorch:P2}", Math.Abs(engineAcc - torchAcc));
        Assert.True(engineAcc > 0.6, $"the engine reached only {engineAcc:P1}: the setting no longer learns");
        Assert.True(Math.Abs(engineAcc - torchAcc) <= 0.01, $"accuracy: engine {engineAcc:P2}, TorchSharp {torchAcc:P2}");
        Assert.True(Math.Abs(served - torchAcc) <= 0.002, $"the engine serving the TorchSharp adapter: {served:P2}, TorchSharp itself {torchAcc:P2}");
        Assert.True(Math.Abs(servedOnTorch - engineAcc) <= 0.002, $"TorchSharp serving the engine's adapter: {servedOnTorch:P2}, the engine itself {engineAcc:P2}");
    }

    /// <summary>Progress reported on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public SyncProgress(List<TrainingProgress> list) : this(list.Add) { }
        public void Report(TrainingProgress value) => report(value);
    }
}

/// <summary>Tests that must not run beside others (they measure the process).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection { public const string Name = "serial"; }
