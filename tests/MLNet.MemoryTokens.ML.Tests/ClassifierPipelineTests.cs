using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Whole pipelines: data → MapValueToKey → our trainer → MapKeyToValue, evaluated and served like ML.NET's own.</summary>
public class ClassifierPipelineTests
{
    static MemoryTokensTrainer.Options Options(int epochs = 12) => new()
    {
        Backbone = TinyVit.Create(), MemoryTokens = 2, Epochs = epochs, BatchSize = 16, LearningRate = 1e-2f, Seed = 3, ValidationFraction = 0,
    };

    [Fact]
    public void MemoryTokensFitsASeparableProblemAndEvaluatesLikeAnMLNetTrainer()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(ColorImages.LargeImageRows(ColorImages.Range(0, 60)));
        var test = ml.Data.LoadFromEnumerable(ColorImages.LargeImageRows(ColorImages.Range(1000, 30)));
        var pipeline = ColorImages.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));

        Assert.True(metrics.MicroAccuracy >= 0.9, $"micro accuracy {metrics.MicroAccuracy}");
        Assert.InRange(metrics.LogLoss, 0, 1);                  // Score holds probabilities
        Assert.Equal(3, metrics.ConfusionMatrix.NumberOfClasses);
        var classifier = model.GetClassifier();
        Assert.Equal(ColorImages.Classes, classifier.ClassNames);
        Assert.Equal(TuningMethod.Memory, classifier.Method);
        Assert.Equal(12, classifier.TrainingHistory.Count);

        // PredictedLabel maps back to the class names; Score has them as slot names.
        var scored = model.Transform(test);
        var predicted = scored.GetColumn<string>("PredictedLabel").ToArray();
        Assert.All(predicted, p => Assert.Contains(p, ColorImages.Classes));
        VBuffer<ReadOnlyMemory<char>> slots = default;
        scored.Schema["Score"].GetSlotNames(ref slots);
        Assert.Equal(ColorImages.Classes, slots.DenseValues().Select(s => s.ToString()));
    }

    [Fact]
    public void PredictedLabelHasTheLabelsOwnKeyType()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 12)));
        var model = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(epochs: 1))).Fit(data);
        var scored = model.Transform(data);
        Assert.Equal(scored.Schema["Label"].Type, scored.Schema["PredictedLabel"].Type);
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 3), scored.Schema["Score"].Type);
    }

    [Fact]
    public void PredictionEngineGivesTheSameScoresAsTransform()
    {
        var ml = new MLContext(seed: 1);
        var rows = ColorImages.ImageRows(ColorImages.Range(0, 45));
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Options(epochs: 2);
        options.InferenceBatchSize = 8;   // several batches, the last one partial
        var model = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel")).Fit(data);

        var batched = ml.Data.CreateEnumerable<ColorImages.Prediction>(model.Transform(data), reuseRowObject: false).ToList();
        var engine = ml.Model.CreatePredictionEngine<ColorImages.ImageRow, ColorImages.Prediction>(model);
        for (int i = 0; i < rows.Count; i++)
        {
            var single = engine.Predict(rows[i]);
            Assert.Equal(batched[i].Score, single.Score);
            Assert.Equal(batched[i].PredictedLabel, single.PredictedLabel);
        }
    }

    [Fact]
    public void MLImagePathAndPixelInputsGiveTheSameScores()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var indices = ColorImages.Range(0, 24).ToList();
        var images = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(indices));
        var model = ColorImages.MapLabel(ml).Append(ml.MulticlassClassification.Trainers.MemoryTokens(Options(epochs: 1))).Fit(images);
        var classifier = model.GetClassifier();

        float[][] Scores(IDataView view) => view.GetColumn<float[]>("Score").ToArray();
        var fromImages = Scores(model.Transform(images));
        var fromPaths = Scores(classifier.Transform(ml.Data.LoadFromEnumerable(ColorImages.PathRows(indices, temp.Path, absolute: true))));
        var fromPixels = Scores(classifier.Transform(ml.Data.LoadFromEnumerable(ColorImages.PixelRows(indices))));
        Assert.Equal(fromImages, fromPixels);
        Assert.Equal(fromImages, fromPaths);
    }

    [Fact]
    public void FitWithValidationDataValidatesOnItEveryEpoch()
    {
        var ml = new MLContext(seed: 1);
        var map = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 3))));
        var train = map.Transform(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30))));
        var validation = map.Transform(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(200, 12))));
        var trainer = ml.MulticlassClassification.Trainers.MemoryTokens(Options(epochs: 3));
        var classifier = trainer.Fit(train, validation);
        Assert.Equal(3, classifier.TrainingHistory.Count);
        Assert.All(classifier.TrainingHistory, h => Assert.NotNull(h.ValidationAccuracy));
    }

    [Fact]
    public void TextLabelsMustBeMappedToKeysFirst()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 6)));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.MemoryTokens(Options()).Fit(data));
        Assert.Contains("label column 'Label'", ex.Message);
        Assert.Contains("Key<UInt32>", ex.Message);
    }

    [Fact]
    public void BaselinesAndVqtTrainThroughTheSamePipeline()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30)));
        var backbone = TinyVit.Create();
        var trainers = new IEstimator<VitClassifierTransformer>[]
        {
            ml.MulticlassClassification.Trainers.VitHeadOnly(new VitHeadOnlyTrainer.Options { Backbone = backbone, Epochs = 2, Seed = 1 }),
            ml.MulticlassClassification.Trainers.VitHeadAndClassToken(new VitHeadAndClassTokenTrainer.Options { Backbone = backbone, Epochs = 2, Seed = 1 }),
            ml.MulticlassClassification.Trainers.VitFullFineTuning(new VitFullFineTuningTrainer.Options { Backbone = backbone, Epochs = 2, Seed = 1 }),
            ml.MulticlassClassification.Trainers.VisualQueryTuning(new VisualQueryTuningTrainer.Options { Backbone = backbone, Epochs = 2, Seed = 1, QueryTokens = 2 }),
            ml.MulticlassClassification.Trainers.VisualQueryTuning(new VisualQueryTuningTrainer.Options { Backbone = backbone, Epochs = 2, Seed = 1, MemoryTokens = 2 }),
        };
        var methods = new List<TuningMethod>();
        foreach (var trainer in trainers)
        {
            var model = ColorImages.MapLabel(ml).Append(trainer).Fit(data);
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
            Assert.InRange(metrics.MicroAccuracy, 0, 1);
            Assert.True(double.IsFinite(metrics.LogLoss));
            methods.Add(model.LastTransformer.Method);
        }
        Assert.Equal([TuningMethod.HeadOnly, TuningMethod.HeadAndClassToken, TuningMethod.Full, TuningMethod.Vqt, TuningMethod.VqtMemory], methods);
    }

    [Fact]
    public void VqtWithMemoryRecordsWhetherTheQueriesReadTheMemoryAndLoadsAsTrained()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30)));
        var backbone = TinyVit.Create();
        VisualQueryTuningTrainer Trainer(int memory, bool reads) => ml.MulticlassClassification.Trainers.VisualQueryTuning(
            new VisualQueryTuningTrainer.Options { Backbone = backbone, Epochs = 1, Seed = 1, MemoryTokens = memory, QueriesReadMemory = reads });
        var reads = ColorImages.MapLabel(ml).Append(Trainer(2, true)).Fit(data).LastTransformer;
        var skips = ColorImages.MapLabel(ml).Append(Trainer(2, false)).Fit(data).LastTransformer;
        Assert.True(reads.Adapter.Config.QueriesReadMemory);
        Assert.False(skips.Adapter.Config.QueriesReadMemory);
        // same seed, same data, same initialisation: the memory trains differently once the queries read it
        Assert.NotEqual(reads.Adapter.Tensors["memory"].Data, skips.Adapter.Tensors["memory"].Data);
        // saved and loaded back, each scores as it was trained
        using var temp = new TempFolder();
        var keyed = ColorImages.MapLabel(ml).Fit(data).Transform(data);
        foreach (var (name, classifier) in new[] { ("reads", reads), ("skips", skips) })
        {
            classifier.SaveAdapter(temp[name]);
            var loaded = ml.MulticlassClassification.Trainers.LoadMemoryTokens(temp[name], backbone);
            Assert.Equal(classifier.Transform(keyed).GetColumn<float[]>("Score").ToArray(), loaded.Transform(keyed).GetColumn<float[]>("Score").ToArray());
        }
        // plain VQT (no memory) has no memory to skip
        var ex = Assert.ThrowsAny<Exception>(() => ColorImages.MapLabel(ml).Append(Trainer(0, false)).Fit(data));
        Assert.Contains("applies to VQT + memory", ex.Message);
    }
}
