namespace MLNet.MemoryTokens.Kernels;

/// <summary>Keys and values that attention reads from outside the stream, read-only (a VQT cache): per sample <see cref="Rows"/>
/// rows of k | v, D each. Attention widens one (sample, head) at a time into its task's scratch, so a batch stored as F16
/// never exists as float32 all at once.</summary>
public abstract class ExternalKeyValues(int rows, int dim)
{
    public int Rows { get; } = rows;
    /// <summary>D: the width of k (and of v) in a row.</summary>
    public int Dim { get; } = dim;

    /// <summary>Head <paramref name="head"/>'s columns of sample <paramref name="sample"/>'s rows: keys and values, each [Rows, headDim].</summary>
    public abstract void ReadHead(int sample, int head, int headDim, Span<float> keys, Span<float> values);

    /// <summary>Sample <paramref name="sample"/>'s rows as stored, widened: [Rows, 2D], k then v in each row.</summary>
    public abstract void ReadSample(int sample, Span<float> rows);

    /// <summary>Float32 rows [B, Rows, 2D] in one array, k then v in each row: what a backbone pass captures.</summary>
    public static ExternalKeyValues Float32(float[] data, int rows, int dim) => new Float32Rows(data, rows, dim);

    sealed class Float32Rows(float[] data, int rows, int dim) : ExternalKeyValues(rows, dim)
    {
        public override void ReadHead(int sample, int head, int headDim, Span<float> keys, Span<float> values)
        {
            var s = data.AsSpan(sample * Rows * 2 * Dim, Rows * 2 * Dim);
            for (int r = 0; r < Rows; r++)
            {
                s.Slice(r * 2 * Dim + head * headDim, headDim).CopyTo(keys.Slice(r * headDim, headDim));
                s.Slice(r * 2 * Dim + Dim + head * headDim, headDim).CopyTo(values.Slice(r * headDim, headDim));
            }
        }

        public override void ReadSample(int sample, Span<float> rows) => data.AsSpan(sample * Rows * 2 * Dim, Rows * 2 * Dim).CopyTo(rows);
    }
}
