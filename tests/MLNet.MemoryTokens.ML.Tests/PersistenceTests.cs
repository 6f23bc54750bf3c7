using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Saving fitted components and whole pipelines, and what mlContext.Model.Save does with ours.</summary>
public class PersistenceTests
{
    static (MLContext Ml, IDataView Data, TransformerChain<ITransformer> Model) Fitted(Model.Backbone backbone)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 30)));
        var model = ColorImages.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = backbone, MemoryTokens = 3, Epochs = 2, Seed = 5 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(data);
        return (ml, data, new TransformerChain<ITransformer>(model.ToArray()));
    }

    static (float[][] Scores, string[] Labels) Score(ITransformer model, IDataView data)
    {
        var scored = model.Transform(data);
        return (scored.GetColumn<float[]>("Score").ToArray(), scored.GetColumn<string>("PredictedLabel").ToArray());
    }

    [Fact]
    public void SaveAdapterAndLoadMemoryTokensGiveIdenticalScores()
    {
        using var temp = new TempFolder();
        var backbone = TinyVit.Create();
        var (ml, data, model) = Fitted(backbone);
        var classifier = model.GetClassifier();
        classifier.SaveAdapter(temp["adapter"]);

        var loaded = ml.MulticlassClassification.Trainers.LoadMemoryTokens(temp["adapter"], backbone);
        var keyed = ColorImages.MapLabel(ml).Fit(data).Transform(data);
        Assert.Equal(classifier.Transform(keyed).GetColumn<float[]>("Score").ToArray(), loaded.Transform(keyed).GetColumn<float[]>("Score").ToArray());
        Assert.Equal(classifier.ClassNames, loaded.ClassNames);
        Assert.Equal(keyed.Schema["Label"].Type, loaded.GetOutputSchema(keyed.Schema)["PredictedLabel"].Type);
    }

    [Fact]
    public void SaveWithAdaptersRoundTripsTheWholePipeline()
    {
        using var temp = new TempFolder();
        var backbone = TinyVit.Create();
        var (ml, data, model) = Fitted(backbone);
        var path = temp["model.zip"];
        ml.Model.SaveWithAdapters(model, data.Schema, path);

        var loaded = new MLContext().Model.LoadWithAdapters(path, out var schema, backbone);
        // the input schema is saved by ML.NET itself, which (as for any model) leaves out columns of types it cannot serialise, like images
        Assert.Equal(data.Schema["Label"].Type, schema["Label"].Type);
        var (scores, labels) = Score(model, data);
        var (loadedScores, loadedLabels) = Score(loaded, data);
        Assert.Equal(scores, loadedScores);
        Assert.Equal(labels, loadedLabels);
        Assert.Equal(3, loaded.Count());    // MapValueToKey, our classifier, MapKeyToValue
    }

    [Fact]
    public void ASingleComponentSavesWithAdaptersAndServesAPredictionEngine()
    {
        using var temp = new TempFolder();
        var backbone = TinyVit.Create();
        var (ml, data, model) = Fitted(backbone);
        var keyed = ColorImages.MapLabel(ml).Fit(data).Transform(data);
        var classifier = model.GetClassifier();
        ml.Model.SaveWithAdapters(classifier, keyed.Schema, temp["alone.zip"]);   // ours first: an empty ML.NET part carries the schema

        var loaded = ml.Model.LoadWithAdapters(temp["alone.zip"], out var schema, backbone);
        Assert.Single(loaded);
        Assert.Equal(keyed.Schema["Label"].Type, schema["Label"].Type);
        Assert.Equal(classifier.Transform(keyed).GetColumn<float[]>("Score").ToArray(), loaded.Transform(keyed).GetColumn<float[]>("Score").ToArray());

        var whole = ml.Model.LoadWithAdapters(Save(ml, model, data, temp["whole.zip"]), out _, backbone);
        var engine = ml.Model.CreatePredictionEngine<ColorImages.ImageRow, ColorImages.Prediction>(whole);
        var row = ColorImages.ImageRows([7])[0];
        Assert.Equal(Score(model, data).Scores[7], engine.Predict(row).Score);
    }

    static string Save(MLContext ml, ITransformer model, IDataView data, string path)
    {
        ml.Model.SaveWithAdapters(model, data.Schema, path);
        return path;
    }

    [Fact]
    public void SaveWithAdaptersFindsTheBackboneByItsRecordedPath()
    {
        using var temp = new TempFolder();
        var checkpoint = TinyVit.WriteCheckpoint(temp.Path, seed: 7);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 12)));
        var model = ColorImages.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { BackbonePath = checkpoint, Epochs = 1, Seed = 5 }))
            .Fit(data);
        ml.Model.SaveWithAdapters(model, data.Schema, temp["m.zip"]);
        BackboneCache.Clear();
        var loaded = ml.Model.LoadWithAdapters(temp["m.zip"], out _);
        Assert.Equal(model.Transform(data).GetColumn<float[]>("Score").ToArray(), loaded.Transform(data).GetColumn<float[]>("Score").ToArray());
    }

    sealed class NumericRow
    {
        [Microsoft.ML.Transforms.Image.ImageType(TinyVit.Size, TinyVit.Size)] public MLImage? Image { get; set; }
        public float Label { get; set; }
    }

    [Fact]
    public void NumericKeyValuesSurviveTheRoundTrip()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var backbone = TinyVit.Create();
        var data = ml.Data.LoadFromEnumerable(ColorImages.Range(0, 12).Select(i => new NumericRow { Image = ColorImages.ToMLImage(ColorImages.Image(i)), Label = 10 + i % 3 }).ToList());
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = backbone, Epochs = 1, Seed = 2 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(data);
        ml.Model.SaveWithAdapters(model, data.Schema, temp["numeric.zip"]);
        var loaded = ml.Model.LoadWithAdapters(temp["numeric.zip"], out _, backbone);
        var predicted = loaded.Transform(data).GetColumn<float>("PredictedLabel").ToArray();
        Assert.Equal(model.Transform(data).GetColumn<float>("PredictedLabel").ToArray(), predicted);
        Assert.All(predicted, p => Assert.Contains(p, new[] { 10f, 11f, 12f }));
        Assert.Equal(["10", "11", "12"], model.GetClassifier().ClassNames);
    }

    [Fact]
    public void ModelSaveRefusesOurTransformerAndSaysWhatToDo()
    {
        var (ml, data, model) = Fitted(TinyVit.Create());
        using var stream = new MemoryStream();
        var ex = Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, data.Schema, stream));
        Assert.Contains("VitClassifierTransformer cannot be saved by mlContext.Model.Save", ex.Message);
        Assert.Contains("mlContext.Model.SaveWithAdapters", ex.Message);
        Assert.Contains("SaveAdapter(directory)", ex.Message);

        // given a path, ML.NET creates the file before asking each transformer to save itself (the message says so)
        using var temp = new TempFolder();
        Assert.Throws<NotSupportedException>(() => ml.Model.Save(model, data.Schema, temp["model.zip"]));
        Assert.True(File.Exists(temp["model.zip"]));
    }

    [Fact]
    public void AnAdapterOnAnUnloadableBackboneAsksForTheBackbone()
    {
        using var temp = new TempFolder();
        var (ml, _, model) = Fitted(TinyVit.Create());
        model.GetClassifier().SaveAdapter(temp["adapter"]);
        var ex = Assert.Throws<IOException>(() => ml.MulticlassClassification.Trainers.LoadMemoryTokens(temp["adapter"], backbonePath: temp["missing.safetensors"]));
        Assert.Contains("Pass the backbone", ex.Message);
    }

    [Fact]
    public void FullFineTuningSavesItsWeightsAndLeavesTheSharedBackboneAlone()
    {
        using var temp = new TempFolder();
        var backbone = TinyVit.Create();
        var before = backbone.Model.Parameters.ToDictionary(kv => kv.Key, kv => (float[])kv.Value.Data.Clone());
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, 12)));
        var model = ColorImages.MapLabel(ml)
            .Append(ml.MulticlassClassification.Trainers.VitFullFineTuning(new VitFullFineTuningTrainer.Options { Backbone = backbone, Epochs = 1, Seed = 5 }))
            .Fit(data);
        foreach (var (name, value) in backbone.Model.Parameters) Assert.Equal(before[name], value.Data);
        Assert.NotSame(backbone, model.LastTransformer.Backbone);

        model.LastTransformer.SaveAdapter(temp["full"]);
        var loaded = ml.MulticlassClassification.Trainers.LoadMemoryTokens(temp["full"], backbone);
        foreach (var (name, value) in backbone.Model.Parameters) Assert.Equal(before[name], value.Data);
        var keyed = ColorImages.MapLabel(ml).Fit(data).Transform(data);
        Assert.Equal(model.LastTransformer.Transform(keyed).GetColumn<float[]>("Score").ToArray(), loaded.Transform(keyed).GetColumn<float[]>("Score").ToArray());
        Assert.Equal(TuningMethod.Full, loaded.Method);
    }
}
