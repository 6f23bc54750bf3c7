using Microsoft.ML.Data;
using Microsoft.ML;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Several masked memory-token tasks and the original head in one pass.</summary>
public class MultiTaskTests
{
    static VitClassifierTransformer Task(MLContext ml, IDataView data, Model.Backbone backbone, int seed) =>
        ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
        {
            Backbone = backbone, Masked = true, MemoryTokens = 2, Epochs = 2, Seed = seed, LearningRate = 1e-2f,
        }).Fit(data);

    [Fact]
    public void OriginalHeadColumnIsTheBackbonesOwnLogitsAndTasksMatchTheirClassifiers()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var backbone = TinyVit.Create(seed: 4, classes: 5);
        var rows = ColorImages.ImageRows(ColorImages.Range(0, 20));
        var data = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var a = Task(ml, data, backbone, 1);
        var b = Task(ml, data, backbone, 2);

        var multi = ml.Transforms.ScoreMemoryTokenTasks(new MultiTaskScoringEstimator.Options
        {
            Tasks = [new MemoryTokenTask("colour", a), new MemoryTokenTask("again", b)], ApplySoftmax = false,
        }).Fit(data);
        var scored = multi.Transform(data);
        var original = scored.GetColumn<float[]>("Original.Score").ToArray();

        // the backbone's own forward on the same preprocessed pixels (16×16 already, so only normalisation)
        var images = new Tensor([rows.Count, 3, TinyVit.Size, TinyVit.Size]);
        int plane = 3 * TinyVit.Size * TinyVit.Size;
        for (int i = 0; i < rows.Count; i++)
            ImageTransforms.ToNormalizedChw(ColorImages.Image(i), backbone.Preprocess.Mean, backbone.Preprocess.Std, images.Data.AsSpan(i * plane, plane));
        var logits = backbone.Model.Forward(images);
        for (int i = 0; i < rows.Count; i++) Assert.Equal(logits.Data.AsSpan(i * 5, 5).ToArray(), original[i]);

        // with softmax, each task column equals its classifier's Score (the masked pass is exact per task)
        var probabilities = ml.Transforms.ScoreMemoryTokenTasks([new MemoryTokenTask("colour", a), new MemoryTokenTask("again", b)]).Fit(data).Transform(data);
        Assert.Equal(a.Transform(data).GetColumn<float[]>("Score").ToArray(), probabilities.GetColumn<float[]>("colour.Score").ToArray());
        Assert.Equal(b.Transform(data).GetColumn<float[]>("Score").ToArray(), probabilities.GetColumn<float[]>("again.Score").ToArray());

        // saved and loaded back
        multi.SaveAdapters(temp["tasks"]);
        var loaded = ml.Transforms.LoadMemoryTokenTasks(temp["tasks"], backbone);
        Assert.Equal(scored.GetColumn<float[]>("again.Score").ToArray(), loaded.Transform(data).GetColumn<float[]>("again.Score").ToArray());
        Assert.Equal(original, loaded.Transform(data).GetColumn<float[]>("Original.Score").ToArray());
    }

    [Fact]
    public void UnmaskedTasksAreRefused()
    {
        var ml = new MLContext(seed: 1);
        var backbone = TinyVit.Create();
        var rows = ColorImages.ImageRows(ColorImages.Range(0, 9));
        var data = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var plain = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = backbone, Epochs = 1 }).Fit(data);
        var ex = Assert.Throws<ArgumentException>(() => ml.Transforms.ScoreMemoryTokenTasks([new MemoryTokenTask("plain", plain)]).Fit(data));
        Assert.Contains("attention-masked", ex.Message);
    }
}
