using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Wrong column types are rejected at schema propagation, naming the column and the expected type.</summary>
public class SchemaValidationTests
{
    sealed class ScalarImageRow { public float Image { get; set; } public uint Label { get; set; } }
    sealed class ShortPixelsRow { [VectorType(10)] public float[] Image { get; set; } = []; [KeyType(3)] public uint Label { get; set; } }
    sealed class FloatLabelRow { [VectorType(3 * TinyVit.Size * TinyVit.Size)] public float[] Image { get; set; } = []; public float Label { get; set; } }
    sealed class GoodRow { [VectorType(3 * TinyVit.Size * TinyVit.Size)] public float[] Image { get; set; } = []; [KeyType(3)] public uint Label { get; set; } }

    static MemoryTokensTrainer Trainer(MLContext ml) =>
        ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), Epochs = 1 });

    /// <summary>The estimator's GetOutputSchema, reached the way a pipeline reaches it (EstimatorChain.Fit propagates schemas first).</summary>
    static ArgumentOutOfRangeException Propagate<TRow>(MLContext ml, IEstimator<ITransformer> estimator, TRow row) where TRow : class
    {
        var data = ml.Data.LoadFromEnumerable(new[] { row });
        return Assert.Throws<ArgumentOutOfRangeException>(() => new EstimatorChain<ITransformer>().Append(estimator).Fit(data));
    }

    [Fact]
    public void ScalarImageColumnIsRejected()
    {
        var ml = new MLContext();
        var ex = Propagate(ml, Trainer(ml), new ScalarImageRow());
        Assert.Contains("image column 'Image'", ex.Message);
        Assert.Contains("expected MLImage, Text (an image path), or a Vector<Single> or Vector<Byte> of 3·16·16 = 768", ex.Message);
        Assert.Contains("got Single", ex.Message);
    }

    [Fact]
    public void FloatLabelIsRejected()
    {
        var ml = new MLContext();
        var ex = Propagate(ml, Trainer(ml), new FloatLabelRow());
        Assert.Contains("label column 'Label'", ex.Message);
        Assert.Contains("expected Key<UInt32>", ex.Message);
        Assert.Contains("got Single", ex.Message);
    }

    [Fact]
    public void MissingColumnIsNamed()
    {
        var ml = new MLContext();
        var trainer = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), ImageColumnName = "Picture" });
        var ex = Propagate(ml, trainer, new GoodRow());
        Assert.Contains("Input column 'Picture' (image) was not found", ex.Message);
    }

    [Fact]
    public void PixelVectorOfTheWrongLengthIsRejectedWithTheSizeItNeeds()
    {
        var ml = new MLContext();
        var ex = Propagate(ml, Trainer(ml), new ShortPixelsRow { Image = new float[10], Label = 1 });
        Assert.Contains("image column 'Image'", ex.Message);
        Assert.Contains("3·16·16 = 768", ex.Message);
        Assert.Contains("Vector<Single, 10>", ex.Message);
    }

    [Fact]
    public void FittedTransformerRejectsAWrongInputSchema()
    {
        var ml = new MLContext(seed: 1);
        var good = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new GoodRow { Image = ColorImages.ToPlanar(ColorImages.Image(i)), Label = (uint)(i % 3 + 1) }));
        var model = Trainer(ml).Fit(good);
        var bad = ml.Data.LoadFromEnumerable(new[] { new ScalarImageRow() });
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => model.GetOutputSchema(bad.Schema));
        Assert.Contains("image column 'Image'", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Transform(bad));
    }

    [Fact]
    public void AMissingImageFileIsReportedByName()
    {
        using var temp = new TempFolder();
        var ml = new MLContext(seed: 1);
        var rows = ColorImages.PathRows(ColorImages.Range(0, 9), temp.Path);
        rows[4].Image = "missing.ppm";
        var data = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var trainer = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), ImageFolder = temp.Path, Epochs = 1 });
        var ex = Assert.Throws<MLNet.MemoryTokens.Imaging.ImageDecodeException>(() => trainer.Fit(data));
        Assert.Contains("missing.ppm", ex.Message);
    }

    [Fact]
    public void PixelValuesOutside0To255AreRefusedWhenTraining()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 6).Select(i => new GoodRow { Image = ColorImages.ToPlanar(ColorImages.Image(i)).Select(v => v * 2).ToArray(), Label = (uint)(i % 3 + 1) });
        var ex = Assert.Throws<InvalidDataException>(() => Trainer(ml).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("outside 0–255", ex.Message);
        Assert.Contains("column 'Image'", ex.Message);
    }
}
