using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Hosting;
using MLNet.MemoryTokens.ML.Data;

namespace MLNet.MemoryTokens.ML.Scoring;

/// <summary>What one of our transformers computes: from an image column, a few output columns, one batched forward pass at
/// a time. Shared by the batched <see cref="ScoredDataView"/> (Transform) and the per-row <see cref="ScoringRowMapper"/>
/// (PredictionEngine), so both give the same values.</summary>
internal abstract class ImageScorer
{
    protected ImageScorer(ImageInput input, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        Input = input;
        BatchSize = batchSize;
    }

    public ImageInput Input { get; }
    public int BatchSize { get; }
    public abstract IReadOnlyList<OutputColumn> Outputs { get; }

    /// <summary>Fills <paramref name="output"/> rows <paramref name="rows"/> (one per image) from normalised images [B, 3, S, S].</summary>
    protected abstract void Forward(Tensor images, int[] rows, OutputBuffers output);

    /// <summary>Rows whose image is missing: NaN scores and a missing key (0), as ML.NET marks a missing prediction.</summary>
    static void MarkMissing(OutputBuffers output, IReadOnlyList<OutputColumn> columns, int row)
    {
        for (int c = 0; c < columns.Count; c++)
        {
            if (columns[c].IsKey) output.Keys[c][row] = 0;
            else output.Floats[c].AsSpan(row * columns[c].Length, columns[c].Length).Fill(float.NaN);
        }
    }

    /// <summary>Preprocesses <paramref name="count"/> image values (decoding in parallel) and scores them in one pass.</summary>
    public void Score(Func<int, object?> value, int count, OutputBuffers output)
    {
        int pixels = Input.PixelCount;
        var images = new Tensor([count, 3, Input.Size, Input.Size]);
        var present = new bool[count];
        ParallelRows.For(count, i => present[i] = Input.ToModelInput(value(i), images.Data.AsSpan(i * pixels, pixels)));
        var rows = Enumerable.Range(0, count).Where(i => present[i]).ToArray();
        if (rows.Length < count)
        {
            foreach (var i in Enumerable.Range(0, count).Where(i => !present[i])) MarkMissing(output, Outputs, i);
            if (rows.Length == 0) return;
            var compact = new Tensor([rows.Length, 3, Input.Size, Input.Size]);
            for (int k = 0; k < rows.Length; k++) images.Data.AsSpan(rows[k] * pixels, pixels).CopyTo(compact.Data.AsSpan(k * pixels, pixels));
            images = compact;
        }
        Forward(images, rows, output);
    }

    /// <summary>The input schema plus the output columns (after checking the image column).</summary>
    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        Input.Bind(input);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        foreach (var column in Outputs) builder.AddColumn(column.Name, column.Type, column.Annotations);
        return builder.ToSchema();
    }

    /// <summary>Softmax probabilities into <paramref name="dest"/> (ML.NET's multiclass Score: Evaluate's log-loss reads it as probabilities).</summary>
    protected static void Softmax(ReadOnlySpan<float> logits, Span<float> dest) => Kernels.Softmax.Forward(dest, logits, 1, logits.Length);

    /// <summary>1 + the index of the largest logit (the first on ties), the engine's own argmax.</summary>
    protected static uint PredictedKey(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return (uint)best + 1;
    }
}
