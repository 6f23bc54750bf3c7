using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.ML.Tests;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The ML.NET components with <c>Backend = "torchsharp"</c>: the same fit as on the managed engine, scored on the
/// device, and the saved adapter served by either backend.</summary>
public sealed class MlNetBackendTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mmt-ts-ml-" + Guid.NewGuid().ToString("N")[..8]);
    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static MemoryTokensTrainer.Options Options(MLNet.MemoryTokens.Model.Backbone backbone, string backend) => new()
    {
        Backbone = backbone, MemoryTokens = 2, Epochs = 2, BatchSize = 8, LearningRate = 1e-2f, Seed = 11, ValidationFraction = 0.2,
        Backend = backend, Device = "cpu",
    };

    [Fact]
    public void MemoryTokensTrainerOnTorchSharpFitsAndScoresAsOnTheEngine()
    {
        var backbone = TinyVit.Create();
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(ColorImages.LargeImageRows(ColorImages.Range(0, 40)));
        var managed = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(backbone, "managed"))).Fit(data);
        var torch = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(backbone, TorchSharpBackend.Name))).Fit(data);

        // the same training (two epochs of AdamW from the same seed), to float32 rounding
        foreach (var (name, t) in managed.LastTransformer.Adapter.Tensors)
            TinyModels.AssertClose(t.Data, torch.LastTransformer.Adapter.Tensors[name].Data, 2e-4, 1e-4, $"ML.NET fit on TorchSharp: {name}");
        Assert.Equal(managed.LastTransformer.TrainingHistory.Select(h => h.TrainAccuracy), torch.LastTransformer.TrainingHistory.Select(h => h.TrainAccuracy));

        // the fitted transformer scores with the TorchSharp model; its saved adapter scores the same on the managed engine
        var scoresTorch = torch.Transform(data).GetColumn<float[]>("Score").ToArray();
        var folder = Path.Combine(_dir, "torch");
        torch.LastTransformer.SaveAdapter(folder);
        var served = ml.MulticlassClassification.Trainers.LoadMemoryTokens(folder, backbone);
        var servedOnTorch = ml.MulticlassClassification.Trainers.LoadMemoryTokens(folder, backbone, TinyModels.Cpu);
        var keyed = ColorImages.MapLabel(ml).Fit(data).Transform(data);
        var scoresServed = served.Transform(keyed).GetColumn<float[]>("Score").ToArray();
        var scoresServedOnTorch = servedOnTorch.Transform(keyed).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < scoresTorch.Length; i++)
        {
            TinyModels.AssertClose(scoresTorch[i], scoresServed[i], 1e-5, 1e-5, "ML.NET scores: TorchSharp fit vs its adapter on the engine");
            TinyModels.AssertClose(scoresTorch[i], scoresServedOnTorch[i], 1e-5, 1e-5, "ML.NET scores: TorchSharp fit vs its adapter on TorchSharp");
        }
    }

    [Fact]
    public void VqtFeaturizerOnTorchSharpGivesTheEnginesFeatures()
    {
        var backbone = TinyVit.Create();
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(ColorImages.LargeImageRows(ColorImages.Range(0, 24)));
        VqtFeaturizerEstimator.Options Vqt(string backend) => new()
        {
            Backbone = backbone, QueryTokens = 1, QueryDropout = 0, Epochs = 1, BatchSize = 8, Seed = 3, ValidationFraction = 0, Backend = backend, Device = "cpu",
        };
        var managed = ColorImages.MapLabel(ml).Append(ml.Transforms.VqtFeaturizer(Vqt("managed"))).Fit(data);
        var torch = ColorImages.MapLabel(ml).Append(ml.Transforms.VqtFeaturizer(Vqt(TorchSharpBackend.Name))).Fit(data);
        var a = managed.Transform(data).GetColumn<float[]>("Features").ToArray();
        var b = torch.Transform(data).GetColumn<float[]>("Features").ToArray();
        for (int i = 0; i < a.Length; i++) TinyModels.AssertClose(a[i], b[i], 1e-4, 1e-4, "ML.NET VQT features, managed vs TorchSharp fit");
    }
}
