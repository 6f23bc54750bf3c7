using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>Adapters are the interchange format: a folder written by one backend is read by the other with the same logits;
/// the multi-task pass and VQT's cached path agree with the engine's.</summary>
public sealed class AdapterInterchangeTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mmt-ts-" + Guid.NewGuid().ToString("N")[..8]);
    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static readonly string[] Labels5 = ["a", "b", "c", "d", "e"];

    /// <summary>A model whose tensors moved away from their initial values (so a round trip that dropped one would show).</summary>
    static void Perturb(TorchTunedModel m, int seed)
    {
        using var _ = no_grad();
        var g = new Generator((ulong)seed);
        foreach (var (_, p) in m.Trainable) p.add_(randn(p.shape, generator: g) * 0.05f);
    }

    [Theory]
    [MemberData(nameof(MethodParityTests.Methods), MemberType = typeof(MethodParityTests))]
    public void TorchAdapterServesOnTheEngineAndBack(string method)
    {
        var backbone = TinyModels.Backbone();
        var tuning = MethodParityTests.Tuning(method, backbone);
        using var trained = TorchTuning.Create(backbone, tuning, 5, seed: 2, CPU);
        Perturb(trained, 9);
        var folder = Path.Combine(_dir, method);
        TorchTuning.ToAdapter(trained, backbone, tuning, Labels5, backbone.Preprocess).Save(folder);

        // the engine reads the folder the TorchSharp backend wrote
        var images = TinyModels.Images(3, 8);
        var engine = Adapter.Load(folder).CreateModel(backbone, folder, tuning.Extends);
        var expected = engine.Forward(images, keepForBackward: false);
        using (no_grad())
        using (var x = TorchTensors.ToTorch(images))
        using (var logits = trained.Forward(x, training: false))
            TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(logits).Data, 1e-5, 1e-5, $"{method} adapter TorchSharp → engine logits");

        // and back: the engine's adapter (saved again by the engine) loads into TorchSharp with the same logits
        var again = Path.Combine(_dir, method + "-engine");
        Adapter.From(engine, backbone, tuning, Labels5, backbone.Preprocess).Save(again);
        using var loaded = TorchTuning.Load(Adapter.Load(again), backbone, CPU, extends: tuning.Extends);
        using (no_grad())
        using (var x = TorchTensors.ToTorch(images))
        using (var logits = loaded.Forward(x, training: false))
            TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(logits).Data, 1e-5, 1e-5, $"{method} adapter engine → TorchSharp logits");
        foreach (var (name, t) in Adapter.Load(folder).Tensors) Assert.Equal(t.Data, Adapter.Load(again).Tensors[name].Data);
    }

    [Fact]
    public void WrongBackboneIsRefusedWithBothFingerprints()
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        using var m = TorchTuning.Create(backbone, tuning, 5, 0, CPU);
        var folder = Path.Combine(_dir, "a");
        TorchTuning.ToAdapter(m, backbone, tuning, Labels5, backbone.Preprocess).Save(folder);
        var other = TinyModels.Backbone(seed: 4);
        var e = Assert.Throws<InvalidOperationException>(() => TorchTuning.Load(Adapter.Load(folder), other, CPU));
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
        using var second = TorchTuning.Create(backbone, secondTuning, 3, seed: 4, CPU);
        Perturb(second, 1);
        var secondAdapter = TorchTuning.ToAdapter(second, backbone, secondTuning, ["x", "y", "z"], backbone.Preprocess);
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
        using var alone = second.Forward(x, training: false);
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
        using var model = (TorchQueryTunedVit)TorchTuning.Create(backbone, tuning, 5, 3, CPU);
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
        using var model = (TorchQueryTunedVit)TorchTuning.Create(backbone, tuning, 5, 1, CPU);
        var images = TinyModels.Images(3, 5);
        var expected = QueryFeaturizer.Featurize(engine, images);
        using var x = TorchTensors.ToTorch(images);
        using var features = model.Features(x);
        Assert.Equal(expected.Shape, TorchTensors.ToEngine(features).Shape);
        TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(features).Data, 1e-6, 1e-5, "VQT feature vectors");
    }

    [Fact]
    public void BFloat16AutocastStaysCloseToFloat32()
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        using var f32 = TorchTuning.Create(backbone, tuning, 5, 0, CPU);
        using var bf16 = TorchTuning.Create(backbone, tuning, 5, 0, CPU, ComputePrecision.BFloat16);
        using var _ = no_grad();
        using var x = TorchTensors.ToTorch(TinyModels.Images(4, 3));
        var a = TorchTensors.ToEngine(f32.Forward(x, false));
        var b = TorchTensors.ToEngine(bf16.Forward(x, false));
        double diff = TinyModels.MaxAbsDiff(a.Data, b.Data), scale = TinyModels.MaxAbs(a.Data);
        Assert.True(diff > 0, "bf16 autocast changed nothing: the bf16 path did not run");
        Assert.True(diff <= 2e-2 * Math.Max(scale, 1), $"bf16 logits {diff:G3} from float32 (max |logit| {scale:G3})");
        ParityLog.Record("bf16 autocast vs float32 logits (tiny ViT)", diff);
    }
}
