using System.Runtime.CompilerServices;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>Small random ViTs and inputs shared by the parity tests, and comparison helpers that name the worst element.</summary>
public static class TinyModels
{
    /// <summary>The TorchSharp backend on the CPU (TorchSharp-cpu in CI).</summary>
    public static readonly ComputeOptions Cpu = TorchSharpBackend.On("cpu");

    /// <summary>The backend is registered in the method table before any test runs (as an application does at start-up).</summary>
    [ModuleInitializer]
    internal static void RegisterBackend() => TorchSharpBackend.Register();

    /// <summary>A method's TorchSharp model on the CPU, from the engine's starting tensors for <paramref name="seed"/>.</summary>
    public static TorchEngineModel Torch(Backbone backbone, TuningOptions tuning, int classes, int seed) => TorchSharpBackend.CreateModel(backbone, tuning, classes, seed, Cpu);

    /// <summary>A TorchSharp model's current device tensors as an adapter (the host copies brought up to date first).</summary>
    public static Adapter ToAdapter(TorchEngineModel model, Backbone backbone, TuningOptions tuning, IReadOnlyList<string> labels)
    {
        model.CopyToHost();
        return Adapter.From(model, backbone, tuning, labels, backbone.Preprocess, compute: TuningMethods.Compute(tuning.Method, Cpu));
    }

    /// <summary>D = 32, depth 2, 2 heads, patch 4 at 16×16 (17 tokens), 5 classes: the parity fixtures' shape.</summary>
    public static VitConfig Config(int classes = 5) => new() { ImageSize = 16, PatchSize = 4, Dim = 32, Depth = 2, Heads = 2, MlpDim = 64, NumClasses = classes };

    public static Backbone Backbone(int seed = 3, int classes = 5)
    {
        var model = VisionTransformer.CreateRandom(Config(classes), seed);
        return new Backbone(model, new PreprocessConfig { InputSize = 16 }, $"random-vit-{seed}", MLNet.MemoryTokens.Model.Backbone.ComputeFingerprint(model.Parameters));
    }

    public static MLNet.MemoryTokens.Tensor Images(int batch, int seed, int size = 16)
    {
        var rng = new Random(seed);
        var t = new MLNet.MemoryTokens.Tensor([batch, 3, size, size]);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }

    public static int[] Labels(int batch, int classes, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, batch).Select(_ => rng.Next(classes)).ToArray();
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths {a.Length} and {b.Length} differ");
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    public static double MaxAbs(ReadOnlySpan<float> a)
    {
        double m = 0;
        foreach (var v in a) m = Math.Max(m, Math.Abs(v));
        return m;
    }

    /// <summary>Asserts max |a − e| ≤ atol + rtol · max |e| and returns the difference (for the parity table).</summary>
    public static double AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        double diff = MaxAbsDiff(expected, actual), scale = MaxAbs(expected);
        Xunit.Assert.True(diff <= atol + rtol * scale, $"{what}: max |diff| {diff:G4} (max |expected| {scale:G4}); atol {atol}, rtol {rtol}");
        ParityLog.Record(what, diff);
        return diff;
    }
}

/// <summary>Every difference the parity tests measured, written to $MMT_PARITY_LOG when set (how docs/torchsharp.md's table is made).</summary>
public static class ParityLog
{
    static readonly object Gate = new();
    public static void Record(string what, double diff)
    {
        var path = Environment.GetEnvironmentVariable("MMT_PARITY_LOG");
        if (string.IsNullOrEmpty(path)) return;
        lock (Gate) File.AppendAllText(path, $"{what}\t{diff:E2}\n");
    }
}
