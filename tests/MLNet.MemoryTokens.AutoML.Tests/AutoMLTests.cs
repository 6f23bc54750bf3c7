using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.ML.Tests;
using Xunit;

namespace MLNet.MemoryTokens.AutoML.Tests;

/// <summary>The memory-token trainer as an AutoML sweepable estimator over tokens, learning rate and epochs.</summary>
public class AutoMLTests
{
    [Fact]
    public async Task ASmallSweepRunsAndReturnsAWorkingModel()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30)));
        var test = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(300, 15)));
        var baseline = new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), BatchSize = 16, ValidationFraction = 0, Seed = 1 };
        var space = new SearchSpace<MemoryTokensSearchSpace>();
        space["Epochs"] = new UniformIntOption(1, 3, defaultValue: 2);   // keep the test short
        var trials = new List<MemoryTokensSearchSpace>();

        var sweepable = ml.Auto().MemoryTokens(baseline, space, p => { lock (trials) trials.Add(p); });
        var pipeline = ColorImages.MapLabel(ml).Append(sweepable).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var experiment = ml.Auto().CreateExperiment()
            .SetPipeline(pipeline)
            .SetMulticlassClassificationMetric(MulticlassClassificationMetric.MicroAccuracy, labelColumn: "Label")
            .SetDataset(train, test)
            .SetMaxModelToExplore(3)
            .SetTrainingTimeInSeconds(120);
        var result = await experiment.RunAsync();

        Assert.InRange(result.Metric, 0, 1);
        Assert.NotEmpty(trials);
        Assert.All(trials, t => Assert.InRange(t.Epochs, 1, 3));
        Assert.All(trials, t => Assert.InRange(t.MemoryTokens, 1, 32));
        var metrics = ml.MulticlassClassification.Evaluate(result.Model.Transform(test));
        Assert.Equal(result.Metric, metrics.MicroAccuracy, 6);
    }
}
