namespace MLNet.MemoryTokens;

/// <summary>A dense row-major float32 array with a shape: the unit weights, activations and checkpoints are exchanged in.</summary>
/// <remarks>Deliberately plain (shape + <see cref="float"/>[]): the compute lives in <c>Kernels</c>, so another backend
/// (TorchSharp on CUDA, say) can take the same named tensors without depending on this engine's kernels.</remarks>
public sealed class Tensor
{
    public int[] Shape { get; }
    public float[] Data { get; }

    public Tensor(int[] shape, float[]? data = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape [{string.Join(", ", shape)}].", nameof(shape));
            n *= d;
        }
        if (n > Array.MaxLength) throw new ArgumentException($"Shape [{string.Join(", ", shape)}] has {n} elements, more than an array can hold.", nameof(shape));
        if (data is not null && data.Length != n)
            throw new ArgumentException($"Data length {data.Length} does not match shape [{string.Join(", ", shape)}] ({n} elements).", nameof(data));
        Shape = (int[])shape.Clone();
        Data = data ?? new float[n];
    }

    public static Tensor Zeros(params int[] shape) => new(shape);

    public int Rank => Shape.Length;
    public int Length => Data.Length;
    public Span<float> Span => Data;

    public Tensor Clone() => new(Shape, (float[])Data.Clone());

    public bool ShapeEquals(ReadOnlySpan<int> shape) => Shape.AsSpan().SequenceEqual(shape);

    public string ShapeString => FormatShape(Shape);

    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    public override string ToString() => $"Tensor{ShapeString}";
}
