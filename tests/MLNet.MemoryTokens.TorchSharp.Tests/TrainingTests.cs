using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The TorchSharp trainer against the engine's: same loop and numbers, checkpoint/resume, cancellation, flat memory,
/// and a short real training on the shipped Fashion-MNIST sample.</summary>
[Collection(SerialCollection.Name)]   // the memory test reads the process's resident set: nothing else may run beside it
public sealed class TrainingTests(ITestOutputHelper output) : IDisposable
{
    static readonly string Sample = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mmt-ts-train-" + Guid.NewGuid().ToString("N")[..8]);
    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static readonly TorchBackendOptions Cpu = new() { Device = "cpu" };

    /// <summary>The first <paramref name="count"/> sample images at 16×16 (the tiny ViT's input).</summary>
    static PreparedImages Tiny(int count, string split = "")
    {
        var all = PreparedImages.From(ImageDatasets.Open(Sample + split), new PreprocessConfig { InputSize = 16, CropFraction = 1 });
        return all.Subset(Enumerable.Range(0, count).ToArray());
    }

    [Fact]
    public void OneEpochEqualsTheEngines()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(64);
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, LearningRate = 1e-3f, Seed = 5 };
        var engine = Trainer.Train(backbone, data, null, tuning, options);
        using var torch = TorchTrainer.Train(backbone, data, null, tuning, options, Cpu);
        for (int e = 0; e < 1; e++) Assert.True(Math.Abs(engine.History[e].TrainLoss - torch.History[e].TrainLoss) < 1e-4, $"epoch loss: engine {engine.History[e].TrainLoss}, TorchSharp {torch.History[e].TrainLoss}");
        // after four AdamW steps the tensors agree to a small fraction of the learning rate
        foreach (var (name, t) in engine.Adapter.Tensors)
            TinyModels.AssertClose(t.Data, torch.Adapter.Tensors[name].Data, 2e-4, 1e-4, $"trainer: tensor {name} after one epoch");
        Assert.Equal(engine.Adapter.Config.Method, torch.Adapter.Config.Method);
        Assert.Equal(engine.Adapter.Config.ClassLabels, torch.Adapter.Config.ClassLabels);
    }

    [Fact]
    public void ResumeContinuesWhereTheCheckpointLeft()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(48);
        var tuning = new TuningOptions { Method = TuningMethod.HeadAndClassToken };
        var baseOptions = new TrainingOptions { Epochs = 2, BatchSize = 16, LearningRate = 1e-3f, Seed = 1 };
        using var straight = TorchTrainer.Train(backbone, data, null, tuning, baseOptions, Cpu);
        var ckpt = Path.Combine(_dir, "ckpt");
        using (TorchTrainer.Train(backbone, data, null, tuning, baseOptions with { Epochs = 1, CheckpointDirectory = ckpt }, Cpu)) { }
        Assert.True(File.Exists(Path.Combine(ckpt, "trainer_state.json")));
        var forEngine = Path.Combine(_dir, "ckpt-engine");   // the same epoch-1 state, for the engine to resume below
        Directory.CreateDirectory(forEngine);
        foreach (var f in Directory.GetFiles(ckpt)) File.Copy(f, Path.Combine(forEngine, Path.GetFileName(f)));
        var progress = new List<TrainingProgress>();
        using var resumed = TorchTrainer.Train(backbone, data, null, tuning,
            baseOptions with { CheckpointDirectory = ckpt, Resume = true, Progress = new SyncProgress(progress) }, Cpu);
        Assert.Contains(progress, p => p.Phase == "resume" && p.Epoch == 1);
        Assert.Equal(2, resumed.History.Count);
        foreach (var (name, t) in straight.Adapter.Tensors)
            TinyModels.AssertClose(t.Data, resumed.Adapter.Tensors[name].Data, 1e-6, 1e-6, $"resumed tensor {name}");

        // the engine resumes a checkpoint the TorchSharp backend wrote (same format)
        var engineProgress = new List<TrainingProgress>();
        var engine = Trainer.Train(backbone, data, null, tuning, baseOptions with { CheckpointDirectory = forEngine, Resume = true, Progress = new SyncProgress(engineProgress) });
        Assert.Contains(engineProgress, p => p.Phase == "resume" && p.Epoch == 1);
        Assert.Contains(engineProgress, p => p.Phase == "epoch" && p.Epoch == 2);
        foreach (var (name, t) in straight.Adapter.Tensors)
            TinyModels.AssertClose(t.Data, engine.Adapter.Tensors[name].Data, 1e-4, 1e-4, $"engine resuming a TorchSharp checkpoint: {name}");
    }

    [Fact]
    public void CancellationStopsTraining()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        using var cts = new CancellationTokenSource();
        var options = new TrainingOptions
        {
            Epochs = 3, BatchSize = 8, CancellationToken = cts.Token,
            Progress = new SyncProgress(p => { if (p.Step == 2) cts.Cancel(); }),
        };
        Assert.ThrowsAny<OperationCanceledException>(() =>
            TorchTrainer.Train(backbone, Tiny(32), null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 1 }, options, Cpu));
    }

    [Fact]
    public void BadDeviceIsRefusedByName()
    {
        var e = Assert.Throws<ArgumentException>(() => TorchTrainer.Train(TinyModels.Backbone(classes: 0), Tiny(8), null, new TuningOptions(), new TrainingOptions { Epochs = 1 },
            new TorchBackendOptions { Device = "tpu" }));
        Assert.Contains("'tpu'", e.Message);
        bool cuda = global::TorchSharp.torch.cuda.is_available();
        if (!cuda) Assert.Contains("CUDA is not available", Assert.Throws<InvalidOperationException>(() => TorchBackend.ResolveDevice("cuda")).Message);
        Assert.Equal(cuda ? global::TorchSharp.DeviceType.CUDA : global::TorchSharp.DeviceType.CPU, TorchBackend.ResolveDevice("auto").type);
    }

    /// <summary>Host memory over 500 training steps stays flat: after a warm-up, the resident set grows by less than 40 MB
    /// (a leak of one activation per step would add hundreds).</summary>
    [Fact]
    public void HostMemoryIsFlatOver500Steps()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = Tiny(320);
        var rss = new Dictionary<long, long>();
        var options = new TrainingOptions
        {
            Epochs = 50, BatchSize = 32, LearningRate = 1e-4f, ValidationFraction = 0,
            Progress = new SyncProgress(p =>
            {
                if (p.Phase == "train" && p.Step % 50 == 0) { GC.Collect(); rss[p.Step] = Process.GetCurrentProcess().WorkingSet64; }
            }),
        };
        using var result = TorchTrainer.Train(backbone, data, null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 }, options, Cpu);
        Assert.Equal(500, rss.Keys.Max());
        output.WriteLine(string.Join(", ", rss.OrderBy(kv => kv.Key).Select(kv => $"step {kv.Key}: {kv.Value / 1e6:F1} MB")));
        double growth = (rss[500] - rss[100]) / 1e6;
        Assert.True(growth < 40, $"resident memory grew {growth:F1} MB from step 100 to 500");
    }

    /// <summary>The shipped sample, real ViT-Ti/16 at 112: memory tokens (m = 2) trained by both backends from the same seed on
    /// 480 images for 2 epochs reach the same accuracy on 500 test images within 1 point, and the engine scores the
    /// TorchSharp adapter exactly as TorchSharp does.</summary>
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
        var w = Stopwatch.StartNew();
        var engine = Trainer.Train(backbone, train, null, tuning, options);
        double engineAcc = Trainer.Evaluate(engine.Model, test).Accuracy, engineSeconds = w.Elapsed.TotalSeconds;
        w.Restart();
        using var torch = TorchTrainer.Train(backbone, train, null, tuning, options, Cpu with { Threads = Environment.ProcessorCount });
        double torchAcc = TorchTrainer.Evaluate(torch.Model, test).Accuracy, torchSeconds = w.Elapsed.TotalSeconds;
        var folder = Path.Combine(_dir, "fashion");
        torch.Adapter.Save(folder);
        double served = Trainer.Evaluate(Adapter.Load(folder).CreateModel(backbone), test).Accuracy;
        output.WriteLine($"engine {engineAcc:P2} ({engineSeconds:F0} s), TorchSharp {torchAcc:P2} ({torchSeconds:F0} s), TorchSharp adapter served by the engine {served:P2}");
        ParityLog.Record($"fashion sample accuracy engine {engineAcc:P2} TorchSharp {torchAcc:P2} served {served:P2}", Math.Abs(engineAcc - torchAcc));
        Assert.True(engineAcc > 0.6, $"the engine reached only {engineAcc:P1}: the setting no longer learns");
        Assert.True(Math.Abs(engineAcc - torchAcc) <= 0.01, $"accuracy: engine {engineAcc:P2}, TorchSharp {torchAcc:P2}");
        Assert.True(Math.Abs(served - torchAcc) <= 0.002, $"the engine serving the TorchSharp adapter: {served:P2}, TorchSharp itself {torchAcc:P2}");
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
