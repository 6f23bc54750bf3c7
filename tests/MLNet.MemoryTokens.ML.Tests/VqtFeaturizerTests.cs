using Microsoft.ML.Data;
using Microsoft.ML;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>The VQT featurizer's Features column feeds ML.NET's own trainers.</summary>
public class VqtFeaturizerTests
{
    static VqtFeaturizerEstimator.Options Options() => new()
    {
        Backbone = TinyVit.Create(), QueryTokens = 2, Epochs = 4, BatchSize = 16, LearningRate = 1e-2f, Seed = 2, ValidationFraction = 0,
    };

    [Fact]
    public void FeaturesFeedLbfgsMaximumEntropy()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 60)));
        var test = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(500, 30)));
        var pipeline = ColorImages.MapLabel(ml)
            .Append(ml.Transforms.VqtFeaturizer(Options()))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy("Label", "Features"))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        Assert.True(metrics.MicroAccuracy >= 0.9, $"micro accuracy {metrics.MicroAccuracy}");

        var featurizer = model.Find<VqtFeaturizerTransformer>().Single();
        Assert.Equal(32 * (1 + 2 * 2), featurizer.FeatureLength);   // D·(1 + L·T)
        var features = featurizer.Transform(ColorImages.MapLabel(ml).Fit(test).Transform(test)).GetColumn<float[]>("Features").First();
        Assert.Equal(featurizer.FeatureLength, features.Length);
    }

    [Fact]
    public void FeaturesFeedSdcaAndTheFeaturizerRoundTrips()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var data = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30))))
            .Transform(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30))));
        var options = Options();
        var featurizer = ml.Transforms.VqtFeaturizer(options).Fit(data);
        var sdca = ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("Label", "Features", maximumNumberOfIterations: 20).Fit(featurizer.Transform(data));
        var metrics = ml.MulticlassClassification.Evaluate(sdca.Transform(featurizer.Transform(data)));
        Assert.True(metrics.MicroAccuracy > 0.5, $"micro accuracy {metrics.MicroAccuracy}");

        featurizer.SaveAdapter(temp["vqt"]);
        var loaded = ml.Transforms.LoadVqtFeaturizer(temp["vqt"], options.Backbone);
        Assert.Equal(featurizer.Transform(data).GetColumn<float[]>("Features").ToArray(), loaded.Transform(data).GetColumn<float[]>("Features").ToArray());
    }

    [Fact]
    public void CompressedFeaturizerOutputsTheKeptFeaturesAndRoundTrips()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var rows = ColorImages.ImageRows(ColorImages.Range(0, 24));
        var data = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var options = Options();
        options.KeepFeatureFraction = 0.25;
        options.GroupLasso = 1e-3f;
        var featurizer = ml.Transforms.VqtFeaturizer(options).Fit(data);
        Assert.Equal((int)Math.Ceiling(0.25 * 32 * (1 + 2 * 2)), featurizer.FeatureLength);
        var features = featurizer.Transform(data).GetColumn<float[]>("Features").ToArray();
        Assert.All(features, f => Assert.Equal(featurizer.FeatureLength, f.Length));

        featurizer.SaveAdapter(temp["vqt"]);
        var loaded = ml.Transforms.LoadVqtFeaturizer(temp["vqt"], options.Backbone);
        Assert.Equal(features, loaded.Transform(data).GetColumn<float[]>("Features").ToArray());
    }
}
