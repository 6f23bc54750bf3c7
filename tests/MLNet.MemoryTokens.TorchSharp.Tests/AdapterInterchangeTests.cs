using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.TorchSharp.Tuning.MemoryTokens;
using MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>Adapters are the interchange format: a folder written by one backend is read by the other with the same logits;
/// the multi-task pass and VQT's cached path agree with the engine's.</summary>
public sealed class AdapterInterchangeTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mmt-ts-" + Guid.NewGuid().ToString("N")[..8]);
    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static readonly string[] Labels5 = ["a", "b", "c", "d", "e"];

    /// <summary>A model whose tensors moved away from their initial values (so a round trip that dropped one would show).</summary>
    static void Perturb(TorchEngineModel m, int seed)
    {
        using (no_grad())
        {
            var g = new Generator((ulong)seed);
            foreach (var (_, p) in m.Model.Trainable) p.add_(randn(p.shape, generator: g) * 0.05f);
        }
        m.CopyToHost();   // a fresh model is in host mode: its host copies are the values
    }

    static MLNet.MemoryTokens.Tensor Logits(ITunedModel m, MLNet.MemoryTokens.Tensor images) => m.Forward(images, keepForBackward: false);

    [Theory]
    [MemberData(nameof(MethodParityTests.Methods), MemberType = typeof(MethodParityTests))]
    public void TorchAdapterServesOnTheEngineAndBack(string method)
    {
        var backbone = TinyModels.Backbone();
        var tuning = MethodParityTests.Tuning(method, backbone);
        using var trained = TinyModels.Torch(backbone, tuning, 5, seed: 2);
        Perturb(trained, 9);
        var folder = Path.Combine(_dir, method);
        TinyModels.ToAdapter(trained, backbone, tuning, Labels5).Save(folder);

        // the engine reads the folder the TorchSharp backend wrote
        var images = TinyModels.Images(3, 8);
        var engine = Adapter.Load(folder).CreateModel(backbone, folder, tuning.Extends);
        var expected = Logits(engine, images);
        TinyModels.AssertClose(expected.Data, Logits(trained, images).Data, 1e-5, 1e-5, $"{method} adapter TorchSharp → engine logits");

        // and back: the engine's adapter (saved again by the engine) loads into TorchSharp with the same logits
        var again = Path.Combine(_dir, method + "-engine");
        Adapter.From(engine, backbone, tuning, Labels5, backbone.Preprocess).Save(again);
        using var loaded = TorchSharpBackend.Load(Adapter.Load(again), backbone, TinyModels.Cpu, extends: tuning.Extends);
        Assert.True(loaded.DeviceResident, "a served adapter lives on the device");
        TinyModels.AssertClose(expected.Data, Logits(loaded, images).Data, 1e-5, 1e-5, $"{method} adapter engine → TorchSharp logits");
        TinyModels.AssertClose(expected.Data, Logits(loaded, images).Data, 1e-5, 1e-5, $"{method} adapter engine → TorchSharp logits, second call");
        foreach (var (name, t) in Adapter.Load(folder).Tensors) Assert.Equal(t.Data, Adapter.Load(again).Tensors[name].Data);
        static string Fields(Adapter a) => System.Text.Json.JsonSerializer.Serialize(a.Config with { LibraryVersion = "", Training = new() });
        Assert.Equal(Fields(Adapter.Load(folder)), Fields(Adapter.Load(again)));   // the same config fields from either backend
    }

    /// <summary>Issue 15 on TorchSharp: a VQT + memory adapter written before <c>queries_read_memory</c> was recorded (main's engine
    /// at 35bf619, the queries reading the original tokens only) serves on TorchSharp with that engine's logits; the same
    /// tensors recorded as the default (the queries reading the memory too) give the current engine's logits, which differ.</summary>
    [Fact]
    public void AVqtMemoryAdapterServesOnTorchSharpWithTheRecordedQueryKeys()
    {
        var folder = MLNet.MemoryTokens.Tests.TestPaths.Fixture("adapters", "vqt-memory-35bf619");
        var expected = MLNet.MemoryTokens.IO.SafeTensorsFile.Read(Path.Combine(folder, "expected.safetensors")).Tensors;
        var backbone = Backbone.Load(MLNet.MemoryTokens.Tests.TestPaths.Fixture("parity", "vit_random.safetensors"), new BackboneOptions { Heads = 2, DropHead = true });
        var adapter = Adapter.Load(folder);
        Assert.Null(adapter.Config.QueriesReadMemory);
        var images = expected["images"];
        using (var old = TorchSharpBackend.Load(adapter, backbone, TinyModels.Cpu))
            TinyModels.AssertClose(expected["logits"].Data, Logits(old, images).Data, 1e-5, 1e-5, "vqt-memory adapter without queries_read_memory on TorchSharp vs the engine at 35bf619");
        var asDefault = new Adapter(adapter.Config with { QueriesReadMemory = true }, adapter.Tensors);
        using var reading = TorchSharpBackend.Load(asDefault, backbone, TinyModels.Cpu);
        var engineLogits = Logits(asDefault.CreateModel(backbone, folder), images);
        TinyModels.AssertClose(engineLogits.Data, Logits(reading, images).Data, 1e-5, 1e-5, "vqt-memory adapter with queries_read_memory = true on TorchSharp vs the engine");
        Assert.True(TinyModels.MaxAbsDiff(expected["logits"].Data, engineLogits.Data) > 1e-3, "the two settings give other logits");
    }

    /// <summary>A compressed VQT adapter (trained by the managed engine: compression trains there) serves on TorchSharp with its
    /// kept features, logits and feature vectors equal.</summary>
    [Fact]
    public void CompressedVqtAdapterServesOnTorchSharp()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = TrainingTests.Tiny(40);
        var tuning = new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 1, KeepFeatureFraction = 0.5, GroupLasso = 1e-3f };
        var result = Trainer.Train(backbone, data, null, tuning, new TrainingOptions { Epochs = 1, BatchSize = 20, ValidationFraction = 0 });
        var folder = Path.Combine(_dir, "compressed");
        result.Adapter.Save(folder);
        var images = TinyModels.Images(3, 8);
        var engine = (IQueryFeatures)Adapter.Load(folder).CreateModel(backbone, folder);
        using var loaded = (TorchQueryEngineModel)TorchSharpBackend.Load(Adapter.Load(folder), backbone, TinyModels.Cpu);
        Assert.Equal(engine.HeadInput, loaded.HeadInput);
        Assert.True(loaded.HeadInput < ((TorchQueryTunedVit)loaded.Model).FeatureDim);
        TinyModels.AssertClose(Logits(engine, images).Data, Logits(loaded, images).Data, 1e-5, 1e-5, "compressed VQT adapter logits, engine vs TorchSharp");
        TinyModels.AssertClose(QueryFeaturizer.Featurize(engine, images).Data, QueryFeaturizer.Featurize(loaded, images).Data, 1e-6, 1e-5, "compressed VQT features");
        var refusal = Assert.Throws<NotSupportedException>(() => Trainer.Train(backbone, data, null, tuning, new TrainingOptions { Epochs = 1, Compute = TinyModels.Cpu }));
        Assert.Contains("managed backend", refusal.Message);
    }

    [Fact]
    public void WrongBackboneIsRefusedWithBothFingerprints()
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        using var m = TinyModels.Torch(backbone, tuning, 5, 0);
        var folder = Path.Combine(_dir, "a");
        TinyModels.ToAdapter(m, backbone, tuning, Labels5).Save(folder);
        var other = TinyModels.Backbone(seed: 4);
        var e = Assert.Throws<InvalidOperationException>(() => TorchSharpBackend.Load(Adapter.Load(folder), other, TinyModels.Cpu));
        Assert.Contains(backbone.Fingerprint[..12], e.Message);
        Assert.Contains(other.Fingerprint[..12], e.Message);
    }

    [Theory]
    [InlineData(MultiTaskMode.Concatenation)]
    [InlineData(MultiTaskMode.Extension)]
    public void MultiTaskPassEqualsTheEngines(MultiTaskMode mode)
    {
        var backbone = TinyModels.Backbone();
        var first = MethodParityTests.EarlierTask(backbone);
        var secondTuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true, Extends = mode == MultiTaskMode.Extension ? [first] : [] };
        using var second = TinyModels.Torch(backbone, secondTuning, 3, seed: 4);
        Perturb(second, 1);
        var secondAdapter = TinyModels.ToAdapter(second, backbone, secondTuning, ["x", "y", "z"]);
        var tasks = new List<(string, Adapter)> { ("first", first), ("second", secondAdapter) };
        var images = TinyModels.Images(2, 6);
        var (origE, tasksE) = new MultiTaskVit(backbone, tasks, mode).Forward(images);
        using var pass = new TorchMultiTaskVit(backbone, tasks, CPU, mode);
        using var x = TorchTensors.ToTorch(images);
        var (origT, tasksT) = pass.Forward(x);
        TinyModels.AssertClose(origE!.Data, TorchTensors.ToEngine(origT!).Data, 1e-5, 1e-5, $"multi-task ({mode}) original logits");
        TinyModels.AssertClose(backbone.Model.Forward(images).Data, TorchTensors.ToEngine(origT!).Data, 1e-5, 1e-5, $"multi-task ({mode}) original vs backbone alone");
        for (int t = 0; t < 2; t++) TinyModels.AssertClose(tasksE[t].Data, TorchTensors.ToEngine(tasksT[t]).Data, 1e-5, 1e-5, $"multi-task ({mode}) task {t} logits");
        // the task alone (trained as it runs here) gives what the pass gives for it
        using var alone = second.Model.Forward(x, training: false);
        TinyModels.AssertClose(TorchTensors.ToEngine(alone).Data, TorchTensors.ToEngine(tasksT[1]).Data, 1e-5, 1e-5, $"multi-task ({mode}) task alone vs in the pass");
    }

    [Theory]
    [InlineData(IO.TensorDType.F16)]
    [InlineData(IO.TensorDType.BF16)]
    public void VqtCachedStepEqualsTheEnginesCache(IO.TensorDType dtype)
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2, QueryDropout = 0, CacheDType = dtype };
        var engine = (QueryTunedVit)tuning.CreateModel(backbone.Model, 5, 3);
        using var wrapped = TinyModels.Torch(backbone, tuning, 5, 3);
        var model = (TorchQueryTunedVit)wrapped.Model;
        var images = TinyModels.Images(4, 12);
        int[] idx = [0, 1, 2, 3], batch = [2, 0];
        using var cacheE = new KeyValueCache(4, backbone.Model.Config, dtype, 1L << 30, null, "test");
        engine.CaptureInto(images, cacheE, idx);
        var expected = engine.ForwardCached(cacheE.Load(batch), keepForBackward: false);
        using var cacheT = new TorchKeyValueCache(4, backbone.Model.Config, dtype, KeyValueCacheLocation.PinnedHost, CPU);
        using var _ = no_grad();
        using var x = TorchTensors.ToTorch(images);
        var (kv, cls) = model.BackbonePass(x);
        cacheT.Store(idx, kv, cls);
        var (kvB, clsB) = cacheT.Load(batch);
        using var logits = model.ForwardCached(kvB, clsB, training: false);
        TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(logits).Data, 1e-5, 1e-5, $"VQT from the {dtype} cache logits");
        Assert.Throws<InvalidOperationException>(() => new TorchKeyValueCache(4, backbone.Model.Config, dtype, KeyValueCacheLocation.Device, CPU).Load([0]));
    }

    [Fact]
    public void VqtFeaturesEqualTheEngineFeaturizer()
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2 };
        var engine = (QueryTunedVit)tuning.CreateModel(backbone.Model, 5, 1);
        using var model = (TorchQueryEngineModel)TinyModels.Torch(backbone, tuning, 5, 1);
        var images = TinyModels.Images(3, 5);
        var expected = QueryFeaturizer.Featurize(engine, images);
        var features = QueryFeaturizer.Featurize(model, images);
        Assert.Equal(expected.Shape, features.Shape);
        TinyModels.AssertClose(expected.Data, features.Data, 1e-6, 1e-5, "VQT feature vectors");
    }

    [Fact]
    public void BFloat16AutocastStaysCloseToFloat32()
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        using var f32 = TinyModels.Torch(backbone, tuning, 5, 0);
        using var bf16 = TorchSharpBackend.CreateModel(backbone, tuning, 5, 0, TinyModels.Cpu with { Precision = ComputePrecision.BFloat16 });
        var x = TinyModels.Images(4, 3);
        var a = Logits(f32, x);
        var b = Logits(bf16, x);
        double diff = TinyModels.MaxAbsDiff(a.Data, b.Data), scale = TinyModels.MaxAbs(a.Data);
        Assert.True(diff > 0, "bf16 autocast changed nothing: the bf16 path did not run");
        Assert.True(diff <= 2e-2 * Math.Max(scale, 1), $"bf16 logits {diff:G3} from float32 (max |logit| {scale:G3})");
        ParityLog.Record("bf16 autocast vs float32 logits (tiny ViT)", diff);
    }
}
