using Microsoft.ML;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.ML.Hosting;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;

namespace MLNet.MemoryTokens.ML;

/// <summary>ML.NET data as the engine sees it.</summary>
public static class VitImageData
{
    /// <summary>The labelled rows of <paramref name="data"/> as the engine's <see cref="IImageDataset"/> — exactly what this
    /// package's trainers hand to <see cref="Trainer.Train(Backbone, IImageDataset, IImageDataset?, MemoryTokens.Tuning.TuningOptions, TrainingOptions)"/>:
    /// rows in order, label key k as class k − 1, images resized to the backbone's input size as the engine does. Use it to
    /// run engine APIs on ML.NET data, or to check what a trainer trains on (e.g. <c>PreparedImages.From(…).Fingerprint</c>).</summary>
    /// <param name="data">Rows with an image column (MLImage, path, or 3·S·S pixel vector) and a Key&lt;UInt32&gt; label.</param>
    /// <param name="backbone">The backbone whose input size and preprocessing apply.</param>
    /// <param name="labelColumnName">The key label column.</param>
    /// <param name="imageColumnName">The image column.</param>
    /// <param name="imageFolder">Folder relative image paths are resolved against.</param>
    public static IImageDataset ToImageDataset(this IDataView data, Backbone backbone, string labelColumnName = "Label", string imageColumnName = "Image", string? imageFolder = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(backbone);
        var input = new Data.ImageInput(imageColumnName, imageFolder, Trainer.TrainingPreprocess(backbone));
        var label = data.Schema.GetColumnOrNull(labelColumnName) ?? throw Schema.SchemaShapes.Missing(labelColumnName, "label", Schema.SchemaShapes.KeyLabelType);
        using var log = new ComponentLog(null, nameof(VitImageData));
        return Data.DataViewImageDataset.Read(data, input, labelColumnName, Data.LabelKeys.From(label), log, "given", default);
    }
}
