using MLNet.MemoryTokens.Onnx;

namespace MLNet.MemoryTokens.ML;

/// <summary>Fitted transformers as ONNX models for ONNX Runtime (any platform, no .NET needed): input <c>images</c>
/// [batch, 3, S, S] float32, normalised as the transformer's input; outputs are logits (ML.NET's <c>Score</c> column is
/// their softmax) or, for the VQT featurizer, its feature vector. See <see cref="OnnxExport"/>.</summary>
public static class OnnxExportExtensions
{
    /// <summary>The classifier (any method) with one output, <paramref name="outputName"/>: its logits.</summary>
    public static OnnxExportSummary ExportOnnx(this VitClassifierTransformer transformer, string path, string outputName = "logits", OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return OnnxExport.Save(path, transformer.Backbone, [(outputName, transformer.Adapter)], (options ?? new()) with { MultiTask = false, Features = false });
    }

    /// <summary>The multi-task pass: the original head (when the transformer scores it) and every task, outputs named after the tasks.</summary>
    public static OnnxExportSummary ExportOnnx(this MultiTaskScoringTransformer transformer, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return OnnxExport.Save(path, transformer.Backbone, transformer.Tasks.Select(t => (t.Name, t.Adapter)).ToList(),
            (options ?? new()) with { MultiTask = true, Mode = transformer.Mode, OriginalHead = transformer.OriginalScoreColumnName is not null, Features = false });
    }

    /// <summary>The VQT featurizer with one output, <paramref name="outputName"/>: the feature vector of its column.</summary>
    public static OnnxExportSummary ExportOnnx(this VqtFeaturizerTransformer transformer, string path, string? outputName = null, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return OnnxExport.Save(path, transformer.Backbone, [(outputName ?? transformer.OutputColumnName, transformer.Adapter)], (options ?? new()) with { MultiTask = false, Features = true });
    }
}
