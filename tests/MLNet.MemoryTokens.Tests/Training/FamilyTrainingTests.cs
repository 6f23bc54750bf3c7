using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.Baselines;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Training;

/// <summary>Every method trains on every backbone family through the trainer — its own training step (the linear probe's
/// cached features, VQT's key/value cache) included — and its adapter serves the same logits again.</summary>
public class FamilyTrainingTests
{
    /// <summary>Tiny random ViTs of each family (the parity fixtures' families, here built from their configs).</summary>
    static readonly VitConfig Tiny = new() { ImageSize = 16, PatchSize = 4, Dim = 16, Depth = 2, Heads = 2, MlpDim = 32, NumClasses = 0 };

    public static readonly IReadOnlyDictionary<string, VitConfig> Families = new Dictionary<string, VitConfig>
    {
        ["deit3"] = Tiny with { NoEmbedClass = true, LayerScale = true },
        ["deit_distilled"] = Tiny with { DistillationToken = true },
        ["dinov2"] = Tiny with { PatchSize = 14, ImageSize = 28, LayerScale = true },
        ["dinov2_reg"] = Tiny with { PatchSize = 14, ImageSize = 28, LayerScale = true, RegisterTokens = 4, NoEmbedClass = true },
        ["clip"] = Tiny with { PatchSize = 8, PreNorm = true, PatchBias = false, LayerNormEps = 1e-5f, Activation = VitActivation.QuickGelu },
        ["gap"] = Tiny with { ClassToken = false, RegisterTokens = 4, NoEmbedClass = true, LayerScale = true, GlobalPool = VitPooling.Average, FcNorm = true },
        ["gap_norm"] = Tiny with { ClassToken = false, QkvBias = false, LayerScale = true, GlobalPool = VitPooling.Average },
    };

    static Backbone Random(string family)
    {
        var vit = VisionTransformer.CreateRandom(Families[family], seed: 5);
        return new Backbone(vit, new PreprocessConfig { InputSize = vit.Config.ImageSize }, family, Backbone.ComputeFingerprint(vit.Parameters));
    }

    static readonly (string Name, TuningOptions Options)[] MethodOptions =
    [
        ("memory", new() { Method = TuningMethod.Memory, MemoryTokens = 2 }),
        ("masked", new() { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true }),
        ("head", new() { Method = TuningMethod.HeadOnly }),
        ("head-class", new() { Method = TuningMethod.HeadAndClassToken }),
        ("full", new() { Method = TuningMethod.Full }),
        ("vqt", new() { Method = TuningMethod.Vqt, QueryTokens = 2, GroupLasso = 1e-3f, KeepFeatureFraction = 0.5 }),
        ("vqt-memory", new() { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 1 }),
    ];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var family in Families.Keys)
            foreach (var (method, _) in MethodOptions)
                if (!(method == "head-class" && !Families[family].ClassToken)) data.Add(family, method);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TrainsSavesAndServesTheSameLogits(string family, string method)
    {
        var backbone = Random(family);
        var tuning = MethodOptions.Single(m => m.Name == method).Options;
        var options = new TrainingOptions { Epochs = 2, BatchSize = 8, LearningRate = 3e-3f, WarmupEpochs = 0.5, Seed = 11, ValidationFraction = 0.25 };
        var result = Trainer.Train(backbone, new ColourSquares(24, 1), null, tuning, options);
        Assert.All(result.History, e => Assert.True(double.IsFinite(e.TrainLoss), $"{family} {method}: loss {e.TrainLoss}"));
        var test = PreparedImages.From(new ColourSquares(9, 2), Trainer.TrainingPreprocess(backbone));
        var dir = Path.Combine(Path.GetTempPath(), "mmt-family-" + Guid.NewGuid().ToString("N"));
        try
        {
            result.Adapter.Save(dir);
            var again = Adapter.Load(dir).CreateModel(method == "full" ? Random(family) : backbone, dir);
            Assert.Equal(Trainer.PredictLogits(result.Model, test).Data, Trainer.PredictLogits(again, test).Data);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("gap")]
    [InlineData("gap_norm")]
    public void HeadAndClassTokenIsRefusedWithoutAClassToken(string family)
    {
        var ex = Assert.Throws<ArgumentException>(() => Trainer.Train(Random(family), new ColourSquares(6, 1), null,
            new TuningOptions { Method = TuningMethod.HeadAndClassToken }, new TrainingOptions { Epochs = 1 }));
        Assert.Contains("no class token", ex.Message);
    }

    public static TheoryData<string> FamilyNames() => new(Families.Keys);

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void CachedPathsReadWhatTheForwardComputes(string family)
    {
        var backbone = Random(family);
        var images = new Tensor([3, 3, backbone.Model.Config.ImageSize, backbone.Model.Config.ImageSize], Numerics.Random(3 * 3 * backbone.Model.Config.ImageSize * backbone.Model.Config.ImageSize, 7));
        // the linear probe trains on ForwardHead(ForwardFeatures(x), preLogits) and serves through the model's own pooling
        var probe = new BaselineVit(backbone.Model, 4, new BaselineOptions(), seed: 1);
        var pooled = backbone.Model.ForwardHead(backbone.Model.ForwardFeatures(images), preLogits: true);
        var viaFeatures = new Tensor([3, 4]);
        MLNet.MemoryTokens.Kernels.Linear.Forward(viaFeatures.Data, pooled.Data, probe.HeadWeight.Data, probe.HeadBias.Data, 3, backbone.Model.Config.Dim, 4);
        Numerics.AssertClose(viaFeatures.Data, probe.Forward(images, keepForBackward: false).Data, 1e-5, 1e-5, $"{family}: linear probe's features vs its forward");
        // VQT reads the same keys/values and pooled output from its cache (float32) as from a backbone pass
        var vqt = new QueryTunedVit(backbone.Model, 4, 2, 0f, seed: 1);
        using var cache = new KeyValueCache(3, backbone.Model.Config, MLNet.MemoryTokens.IO.TensorDType.F32, long.MaxValue, null, "test");
        vqt.CaptureInto(images, cache, [0, 1, 2]);
        var cached = vqt.ForwardCached(cache.Load([0, 1, 2]), keepForBackward: false).Data;
        Assert.Equal(vqt.Forward(images, keepForBackward: false).Data, cached);
    }
}
