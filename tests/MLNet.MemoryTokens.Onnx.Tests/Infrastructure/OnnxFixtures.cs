using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>Tiny random ViTs with trained-looking adapters of every method, ONNX Runtime sessions, and comparisons.</summary>
public static class OnnxFixtures
{
    /// <summary>A small ViT: 4×4 patches of 16×16 images (N = 17), width 32 in 4 heads, 3 blocks, 7 classes.</summary>
    public static readonly VitConfig Tiny = new() { ImageSize = 16, PatchSize = 4, Dim = 32, Depth = 3, Heads = 4, MlpDim = 64, NumClasses = 7 };

    /// <summary>Random weights large enough that attention is far from uniform and every part of the graph shows in the logits.</summary>
    public static Backbone RandomBackbone(int seed = 1, VitConfig? config = null)
    {
        var c = config ?? Tiny;
        var rng = new Random(seed);
        var sd = new Dictionary<string, Tensor>();
        foreach (var (key, shape) in c.StateDictShapes())
        {
            var t = new Tensor(shape);
            bool norm = key.Contains("norm");
            for (int i = 0; i < t.Length; i++)
            {
                double r = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                t.Data[i] = (float)((norm && key.EndsWith(".weight")) || key.EndsWith(".gamma") ? 1 + 0.2 * r : key.EndsWith(".bias") ? 0.1 * r
                    : key is "cls_token" or "pos_embed" or "dist_token" or "reg_token" ? 0.5 * r : 0.15 * r);
            }
            sd[key] = t;
        }
        var model = new VisionTransformer(c, sd);
        return new Backbone(model, new PreprocessConfig { InputSize = c.ImageSize }, "tiny-random", Backbone.ComputeFingerprint(model.Parameters));
    }

    /// <summary>A tiny ViT of each backbone family (as <see cref="Tiny"/>, with the family's features), and patch 32.</summary>
    public static readonly IReadOnlyDictionary<string, VitConfig> Families = new Dictionary<string, VitConfig>
    {
        ["deit3"] = Tiny with { NoEmbedClass = true, LayerScale = true },
        ["deit_distilled"] = Tiny with { DistillationToken = true },
        ["dinov2"] = Tiny with { PatchSize = 14, ImageSize = 28, LayerScale = true },
        ["dinov2_reg"] = Tiny with { PatchSize = 14, ImageSize = 28, LayerScale = true, RegisterTokens = 4, NoEmbedClass = true },
        ["clip"] = Tiny with { PatchSize = 8, PreNorm = true, PatchBias = false, LayerNormEps = 1e-5f, Activation = VitActivation.QuickGelu },
        ["gap"] = Tiny with { ClassToken = false, RegisterTokens = 4, NoEmbedClass = true, LayerScale = true, GlobalPool = VitPooling.Average, FcNorm = true },
        ["gap_norm"] = Tiny with { ClassToken = false, QkvBias = false, LayerScale = true, GlobalPool = VitPooling.Average },
        ["patch32"] = Tiny with { PatchSize = 32, ImageSize = 64 },
    };

    public static readonly string[] Methods = ["head", "head-class", "full", "memory", "memory-frozen-class", "vqt", "vqt-compressed", "vqt-memory", "vqt-memory-skip", "masked", "masked-extension"];

    /// <summary>An adapter of <paramref name="method"/> with every trained tensor moved well away from its initialisation
    /// (uniform noise: ±½ on tokens, ±½·<paramref name="headScale"/> on the head, ±½·<paramref name="backboneScale"/> on a full fine-tune's weights).</summary>
    public static Adapter TrainedAdapter(Backbone backbone, string method, int seed, int classes = 5, IReadOnlyList<Adapter>? extends = null,
        float headScale = 0.5f, float backboneScale = 0.05f)
    {
        var tuning = method switch
        {
            "head" => new TuningOptions { Method = TuningMethod.HeadOnly },
            "head-class" => new TuningOptions { Method = TuningMethod.HeadAndClassToken },
            "full" => new TuningOptions { Method = TuningMethod.Full },
            "memory" => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 3 },
            "memory-frozen-class" => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, TrainClassToken = false },
            "vqt" or "vqt-compressed" => new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2 },
            "vqt-memory" => new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 2 },
            "vqt-memory-skip" => new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 2, QueriesReadMemory = false },
            "masked" or "masked-extension" => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 + seed % 3, Masked = true, Extends = extends ?? [] },
            _ => throw new ArgumentException(method),
        };
        var model = tuning.CreateModel(backbone.Model, classes, seed);
        var rng = new Random(seed);
        foreach (var p in model.Parameters)
        {
            float scale = p.Name.StartsWith("backbone.", StringComparison.Ordinal) ? backboneScale : p.Name == "head.weight" ? headScale : 1f;
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] += scale * (float)(rng.NextDouble() - 0.5);
        }
        if (method == "vqt-compressed") ((QueryTunedVit)model).Compress(0.3);
        return Adapter.From(model, backbone, tuning, Enumerable.Range(0, classes).Select(i => $"class{i}").ToArray(), backbone.Preprocess);
    }

    public static Tensor Images(int batch, int seed, int size = 16) => new([batch, 3, size, size], Random(batch * 3 * size * size, seed));

    public static float[] Random(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
    }

    /// <summary>Every output of the model for these images, by name.</summary>
    public static Dictionary<string, float[]> Run(InferenceSession session, Tensor images)
    {
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.InputName, new DenseTensor<float>(images.Data, images.Shape))]);
        return results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
    }

    public static InferenceSession Session(string path) => new(path, new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 });

    public static void AssertClose(float[] expected, float[] actual, double tolerance, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        double worst = 0; int at = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)expected[i] - actual[i]);
            if (!(diff <= worst)) { worst = diff; at = i; }
        }
        if (Environment.GetEnvironmentVariable("MMT_PARITY_LOG") is { Length: > 0 } log)   // the maxima of every comparison, as the engine tests log them
            lock (typeof(OnnxFixtures)) File.AppendAllText(log, $"onnx {what}\t{worst:G9}\n");
        Assert.True(worst <= tolerance, $"{what}: max |ONNX − ours| = {worst:G4} at [{at}] (ours {expected[at]:G6}, ONNX {actual[at]:G6}), tolerance {tolerance}");
    }
}

/// <summary>A scratch folder, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public string Root { get; } = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "mmt-onnx-" + Guid.NewGuid().ToString("N"))).FullName;
    public string PathOf(string name) => Path.Combine(Root, name);
    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
