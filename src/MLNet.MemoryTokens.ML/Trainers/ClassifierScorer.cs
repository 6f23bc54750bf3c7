using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.ML.Scoring;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML.Trainers;

/// <summary>Score (softmax of the tuned model's logits) and PredictedLabel (argmax, of the label's key type).</summary>
internal sealed class ClassifierScorer : ImageScorer
{
    readonly ITunedModel _model;
    readonly object _gate = new();   // tuned models keep per-call buffers: one forward at a time

    public ClassifierScorer(ImageInput input, int batchSize, ITunedModel model, LabelKeys keys, string scoreColumnName, string predictedLabelColumnName)
        : base(input, batchSize)
    {
        if (model.NumClasses != keys.Count)
            throw new InvalidDataException($"The model has {model.NumClasses} classes but the label key type has {keys.Count}.");
        _model = model;
        Outputs =
        [
            new OutputColumn(scoreColumnName, new VectorDataViewType(NumberDataViewType.Single, keys.Count), ScoreColumns.Score(keys.HasKeyValues ? keys.ClassNames : null)),
            new OutputColumn(predictedLabelColumnName, keys.Type, ScoreColumns.PredictedLabel(keys.KeyValueAnnotations)),
        ];
    }

    public override IReadOnlyList<OutputColumn> Outputs { get; }

    protected override void Forward(Tensor images, int[] rows, OutputBuffers output)
    {
        Tensor logits;
        lock (_gate) logits = _model.Forward(images, keepForBackward: false);
        int c = _model.NumClasses;
        for (int k = 0; k < rows.Length; k++)
        {
            var row = logits.Data.AsSpan(k * c, c);
            Softmax(row, output.Floats[0].AsSpan(rows[k] * c, c));
            output.Keys[1][rows[k]] = PredictedKey(row);
        }
    }
}
