using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary><c>transformer.ExportOnnx(path)</c>: the exported model gives in ONNX Runtime what the fitted transformer scores.</summary>
public class OnnxExportTests
{
    const int Rows = 6;

    static IDataView Data(MLContext ml)
    {
        var rows = ColorImages.ImageRows(ColorImages.Range(0, 12));
        return ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
    }

    /// <summary>The first rows' images as the transformers see them (16×16 already: only normalisation).</summary>
    static DenseTensor<float> Images(Model.Backbone backbone)
    {
        int plane = 3 * TinyVit.Size * TinyVit.Size;
        var data = new float[Rows * plane];
        for (int i = 0; i < Rows; i++)
            ImageTransforms.ToNormalizedChw(ColorImages.Image(i), backbone.Preprocess.Mean, backbone.Preprocess.Std, data.AsSpan(i * plane, plane));
        return new DenseTensor<float>(data, [Rows, 3, TinyVit.Size, TinyVit.Size]);
    }

    static Dictionary<string, float[]> Run(string path, DenseTensor<float> images)
    {
        using var session = new InferenceSession(path, new SessionOptions { IntraOpNumThreads = 2 });
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("images", images)]);
        return results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
    }

    static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst <= 1e-4, $"{what}: max |ONNX − transformer| = {worst:G4}");
    }

    [Fact]
    public void ClassifierScoresAreTheSoftmaxOfTheExportedLogits()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var backbone = TinyVit.Create(seed: 3);
        var data = Data(ml);
        var classifier = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = backbone, MemoryTokens = 2, Epochs = 2, Seed = 1 }).Fit(data);
        var summary = classifier.ExportOnnx(temp["classifier.onnx"], "colour");
        Assert.Equal(["colour"], summary.Outputs.Select(o => o.Name));
        Assert.Equal(ColorImages.Classes, summary.Outputs[0].Labels);
        var logits = Run(summary.Path, Images(backbone))["colour"];
        var scores = classifier.Transform(data).GetColumn<float[]>("Score").Take(Rows).ToArray();
        var softmax = new float[logits.Length];
        Kernels.Softmax.Forward(softmax, logits, Rows, 3);
        AssertClose(scores.SelectMany(s => s).ToArray(), softmax, "classifier Score");
    }

    [Fact]
    public void MultiTaskColumnsAreTheExportedOutputs()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var backbone = TinyVit.Create(seed: 4, classes: 5);
        var data = Data(ml);
        VitClassifierTransformer Task(int seed) => ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
            { Backbone = backbone, Masked = true, MemoryTokens = 2, Epochs = 1, Seed = seed }).Fit(data);
        var multi = ml.Transforms.ScoreMemoryTokenTasks(new MultiTaskScoringEstimator.Options
            { Tasks = [new MemoryTokenTask("colour", Task(1)), new MemoryTokenTask("again", Task(2))], ApplySoftmax = false }).Fit(data);
        var summary = multi.ExportOnnx(temp["multi.onnx"]);
        Assert.Equal(["original", "colour", "again"], summary.Outputs.Select(o => o.Name));
        var outputs = Run(summary.Path, Images(backbone));
        var scored = multi.Transform(data);
        AssertClose(scored.GetColumn<float[]>("Original.Score").Take(Rows).SelectMany(s => s).ToArray(), outputs["original"], "original");
        AssertClose(scored.GetColumn<float[]>("colour.Score").Take(Rows).SelectMany(s => s).ToArray(), outputs["colour"], "colour");
        AssertClose(scored.GetColumn<float[]>("again.Score").Take(Rows).SelectMany(s => s).ToArray(), outputs["again"], "again");
    }

    [Fact]
    public void VqtFeaturizerExportsItsFeatureColumn()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var backbone = TinyVit.Create(seed: 5);
        var data = Data(ml);
        var featurizer = ml.Transforms.VqtFeaturizer(new VqtFeaturizerEstimator.Options { Backbone = backbone, QueryTokens = 2, Epochs = 1, Seed = 2, ValidationFraction = 0 }).Fit(data);
        var summary = featurizer.ExportOnnx(temp["features.onnx"]);
        Assert.Equal([("Features", featurizer.FeatureLength)], summary.Outputs.Select(o => (o.Name, o.Width)));
        var features = Run(summary.Path, Images(backbone))["Features"];
        AssertClose(featurizer.Transform(data).GetColumn<float[]>("Features").Take(Rows).SelectMany(f => f).ToArray(), features, "VQT features");
    }
}
