using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning.QueryTuning;

/// <summary>VQT against PyTorch autograd (reference/make_parity_fixtures.py: vqt) and finite differences; the stream stays untouched.</summary>
public class QueryTuningTests
{
    static IReadOnlyDictionary<string, Tensor> F => Numerics.Parity("vqt.safetensors");

    static (QueryTunedVit Model, int[] Labels, Tensor Images) Build()
    {
        var backbone = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        var model = new QueryTunedVit(backbone, 4, queryTokens: 2, queryDropout: 0f, seed: 0);
        F["queries"].Data.CopyTo(model.Queries.Data, 0);
        F["head.weight"].Data.CopyTo(model.HeadWeight.Data, 0);
        F["head.bias"].Data.CopyTo(model.HeadBias.Data, 0);
        return (model, F["labels"].Data.Select(v => (int)v).ToArray(), F["images"]);
    }

    [Fact]
    public void GradientsOfQueriesAndHeadMatchPyTorchAutograd()
    {
        var (model, labels, images) = Build();
        double loss = Numerics.Loss(model, images, labels, backward: true);
        Assert.True(Math.Abs(loss - F["loss"].Data[0]) < 1e-5, $"loss {loss} vs PyTorch {F["loss"].Data[0]}");
        Numerics.AssertClose(F["logits"].Data, model.Forward(images, false).Data, 1e-4, 0, "vqt logits");
        foreach (var p in model.Parameters)
        {
            var expected = F[$"grad.{p.Name}"].Data;
            double scale = expected.Max(v => Math.Abs(v));
            Numerics.AssertClose(expected, p.Grad.Data, 1e-4 * scale + 1e-9, 1e-4, $"vqt d{p.Name}");
        }
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var (model, labels, images) = Build();
        Numerics.Loss(model, images, labels, backward: true);
        foreach (var p in model.Parameters)
            Numerics.AssertDirectionalDerivatives(p.Value.Data, (float[])p.Grad.Data.Clone(), () => Numerics.Loss(model, images, labels, backward: false), $"d{p.Name}");
    }

    [Fact]
    public void TheOriginalStreamIsBitwiseUnchangedWithQueriesPresent()
    {
        var (model, labels, images) = Build();
        var before = model.Backbone.ForwardFeatures(images);
        var kv = model.CaptureKeyValues(images);
        Numerics.Loss(model, images, labels, backward: true);
        var after = model.Backbone.ForwardFeatures(images);
        Assert.Equal(before.Data, after.Data);
        int n = model.Backbone.Config.NumTokens, d = model.Backbone.Config.Dim;
        for (int b = 0; b < images.Shape[0]; b++)
            Assert.Equal(before.Data.AsSpan(b * n * d, d).ToArray(), kv.ClassToken.AsSpan(b * d, d).ToArray());
    }

    [Theory]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void CapturingIntoTheCacheStoresWhatStoringACapturedPassDoes(TensorDType dtype)
    {
        var (model, _, images) = Build();
        int batch = images.Shape[0];
        var config = model.Backbone.Config;
        int[] order = Enumerable.Range(0, batch).Reverse().ToArray();
        using var stored = new KeyValueCache(batch, config, dtype, long.MaxValue, null, "a");
        var kv = model.CaptureKeyValues(images);
        for (int b = 0; b < batch; b++) stored.Store(order[b], kv, b);
        using var direct = new KeyValueCache(batch, config, dtype, long.MaxValue, null, "b");
        Assert.False(direct.AllFilled);
        model.CaptureInto(images, direct, order);
        Assert.True(direct.AllFilled);
        var (x, y) = (stored.Load(order), direct.Load(order));
        Assert.Equal(x.ClassToken, y.ClassToken);
        var (rx, ry) = (new float[config.NumTokens * 2 * config.Dim], new float[config.NumTokens * 2 * config.Dim]);
        for (int l = 0; l < config.Depth; l++)
            for (int b = 0; b < batch; b++)
            {
                x.Layer(l).ReadSample(b, rx); y.Layer(l).ReadSample(b, ry);
                Assert.Equal(rx, ry);
            }
        Assert.Throws<ArgumentException>(() => model.CaptureInto(images, direct, order[1..]));   // one index per image
    }

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    public void AStepFromTheCacheIsTheStepFromTheBackbonePass(TensorDType dtype)
    {
        // attention reads the cache in place (widening one image's head at a time): an F32 cache must give the very bits of
        // the captured pass, an F16 one the same step up to the F16 rounding of keys/values
        var (model, labels, images) = Build();
        var captured = model.CaptureKeyValues(images);
        int batch = images.Shape[0];
        using var cache = new KeyValueCache(batch, model.Backbone.Config, dtype, long.MaxValue, null, "test");
        for (int b = 0; b < batch; b++) cache.Store(batch - 1 - b, captured, b);
        (float[] Logits, float[][] Grads) Step(QueryTunedVit.KeyValues kv)
        {
            var logits = model.ForwardCached(kv, keepForBackward: true);
            var d = new Tensor(logits.Shape);
            CrossEntropy.Compute(logits.Data, labels, 4, 0.1f, d.Data);
            model.ZeroGrad(); model.Backward(d);
            return (logits.Data, model.Parameters.Select(p => (float[])p.Grad.Data.Clone()).ToArray());
        }
        var fromPass = Step(model.CaptureKeyValues(images));
        var fromCache = Step(cache.Load(Enumerable.Range(0, batch).Select(b => batch - 1 - b).ToArray()));
        if (dtype == TensorDType.F32)
        {
            Assert.Equal(fromPass.Logits, fromCache.Logits);
            for (int i = 0; i < fromPass.Grads.Length; i++) Assert.Equal(fromPass.Grads[i], fromCache.Grads[i]);
        }
        else
        {
            Numerics.AssertClose(fromPass.Logits, fromCache.Logits, 1e-3, 1e-2, "logits from an F16 cache");
            Assert.NotEqual(fromPass.Logits, fromCache.Logits);   // the cache really was read (rounded), not the pass's arrays
        }
    }

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void CacheRoundTripsKeyValuesAndRefusesAForeignFile(TensorDType dtype)
    {
        var (model, _, images) = Build();
        var kv = model.CaptureKeyValues(images);
        using var dir = new TempFolder();
        var config = model.Backbone.Config;
        using (var cache = new KeyValueCache(3, config, dtype, 0, dir.Path, "backbone=a;size=16;data=x"))
        {
            Assert.False(cache.Reused);
            for (int b = 0; b < 3; b++) cache.Store(2 - b, kv, b);
            var back = cache.Load([2, 1, 0]);
            double tol = dtype == TensorDType.F32 ? 0 : dtype == TensorDType.F16 ? 2e-3 : 1e-2;
            int per = config.NumTokens * 2 * config.Dim, hd = config.HeadDim, n = config.NumTokens;
            for (int l = 0; l < config.Depth; l++)
                for (int b = 0; b < 3; b++)
                {
                    var (want, got) = (new float[per], new float[per]);
                    kv.Layer(l).ReadSample(b, want);
                    back.Layer(l).ReadSample(b, got);   // Load([2, 1, 0]): sample b is image 2 − b, where sample b was stored
                    Numerics.AssertClose(want, got, 1e-6, tol, $"layer {l} sample {b} {dtype}");
                    // a head's columns, as attention reads them: the same rounded values
                    for (int h = 0; h < config.Heads; h++)
                    {
                        var (k, v) = (new float[n * hd], new float[n * hd]);
                        back.Layer(l).ReadHead(b, h, hd, k, v);
                        for (int r = 0; r < n; r++)
                        {
                            Assert.Equal(got.AsSpan(r * 2 * config.Dim + h * hd, hd).ToArray(), k.AsSpan(r * hd, hd).ToArray());
                            Assert.Equal(got.AsSpan(r * 2 * config.Dim + config.Dim + h * hd, hd).ToArray(), v.AsSpan(r * hd, hd).ToArray());
                        }
                    }
                }
            Assert.Equal(kv.ClassToken, back.ClassToken);
        }
        using (var again = new KeyValueCache(3, config, dtype, 0, dir.Path, "backbone=a;size=16;data=x"))
            Assert.True(again.Reused && again.AllFilled);
        using (var other = new KeyValueCache(3, config, dtype, 0, dir.Path, "backbone=b;size=16;data=x"))
            Assert.False(other.Reused);
    }

    sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("mmt-vqt-").FullName;
        public void Dispose() => Directory.Delete(Path, true);
    }
}
