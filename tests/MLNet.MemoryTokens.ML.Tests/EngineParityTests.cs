using Microsoft.ML.Data;
using Microsoft.ML;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Training through ML.NET is training through the engine: same pixels, same order, same split, same bits.</summary>
public class EngineParityTests
{
    static readonly TrainingOptions Training = new() { Epochs = 2, BatchSize = 8, LearningRate = 1e-2f, Seed = 11, ValidationFraction = 0.2 };

    static MemoryTokensTrainer.Options Options(Model.Backbone backbone, string? folder = null) => new()
    {
        Backbone = backbone, ImageFolder = folder, MemoryTokens = 2, Epochs = Training.Epochs, BatchSize = Training.BatchSize,
        LearningRate = Training.LearningRate, Seed = Training.Seed, ValidationFraction = Training.ValidationFraction,
    };

    static void AssertSameTraining(TrainingResult engine, VitClassifierTransformer viaMlNet)
    {
        Assert.Equal(engine.Adapter.Tensors.Keys.Order(), viaMlNet.Adapter.Tensors.Keys.Order());
        foreach (var (name, tensor) in engine.Adapter.Tensors) Assert.Equal(tensor.Data, viaMlNet.Adapter.Tensors[name].Data);
        Assert.Equal(engine.History.Select(h => (h.TrainLoss, h.TrainAccuracy, h.ValidationLoss, h.ValidationAccuracy)),
            viaMlNet.TrainingHistory.Select(h => (h.TrainLoss, h.TrainAccuracy, h.ValidationLoss, h.ValidationAccuracy)));
    }

    [Fact]
    public void MLImageRowsTrainTheSameBitsAsTheEngineApi()
    {
        var backbone = TinyVit.Create();
        var indices = ColorImages.Range(0, 40).ToList();
        var dataset = new ColorImages.EngineDataset(indices, 20, 24);   // resized by both paths
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var engine = Trainer.Train(backbone, dataset, null, tuning, Training);

        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(ColorImages.LargeImageRows(indices));
        var model = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(backbone))).Fit(data);

        AssertSameTraining(engine, model.LastTransformer);

        // the dataset the trainer hands the engine prepares to the very same pixels and labels
        var keyed = ColorImages.MapLabel(ml).Fit(data).Transform(data);
        Assert.Equal(PreparedImages.From(dataset, Trainer.TrainingPreprocess(backbone)).Fingerprint,
            PreparedImages.From(keyed.ToImageDataset(backbone), Trainer.TrainingPreprocess(backbone)).Fingerprint);
    }

    [Fact]
    public void ImagePathsTrainTheSameBitsAsTheEngineApi()
    {
        using var temp = new TempFolder();
        var backbone = TinyVit.Create();
        var indices = ColorImages.Range(100, 30).ToList();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var engine = Trainer.Train(backbone, new ColorImages.EngineDataset(indices, 20, 24), null, tuning, Training);

        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(ColorImages.PathRows(indices, temp.Path, width: 20, height: 24));
        var model = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(backbone, temp.Path))).Fit(data);
        AssertSameTraining(engine, model.LastTransformer);
    }

    [Fact]
    public void ScoresAreTheEnginesLogitsThroughSoftmax()
    {
        var backbone = TinyVit.Create();
        var indices = ColorImages.Range(0, 20).ToList();
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(ColorImages.LargeImageRows(indices));
        var model = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(backbone))).Fit(data);
        var scores = model.Transform(data).GetColumn<float[]>("Score").ToArray();

        var classifier = model.LastTransformer;
        var logits = Trainer.PredictLogits(classifier.Adapter.CreateModel(backbone), PreparedImages.From(new ColorImages.EngineDataset(indices, 20, 24), Trainer.TrainingPreprocess(backbone)));
        for (int i = 0; i < indices.Count; i++)
            Assert.Equal(Model.Classification.Softmax(logits.Data.AsSpan(i * 3, 3)), scores[i]);
    }
}
