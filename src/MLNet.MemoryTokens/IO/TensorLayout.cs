namespace MLNet.MemoryTokens.IO;

/// <summary>Shape-only rearrangements the checkpoint mappers need: permute, reshape, stack along axis 0.</summary>
internal static class TensorLayout
{
    /// <summary>Output axis <c>i</c> is input axis <c>axes[i]</c> (numpy's <c>transpose(axes)</c>).</summary>
    public static Tensor Permute(Tensor t, params int[] axes)
    {
        int rank = t.Rank;
        if (axes.Length != rank) throw new ArgumentException($"{axes.Length} axes for a rank-{rank} tensor.", nameof(axes));
        var inStrides = new long[rank];
        long stride = 1;
        for (int a = rank - 1; a >= 0; a--) { inStrides[a] = stride; stride *= t.Shape[a]; }

        var shape = new int[rank];
        var step = new long[rank];  // input stride of each output axis
        for (int i = 0; i < rank; i++) { shape[i] = t.Shape[axes[i]]; step[i] = inStrides[axes[i]]; }

        var src = t.Data;
        var dst = new float[src.Length];
        var index = new int[rank];
        long at = 0;  // input offset of the output element being written
        for (int o = 0; o < dst.Length; o++)
        {
            dst[o] = src[at];
            for (int a = rank - 1; a >= 0; a--)  // odometer step, last output axis fastest
            {
                at += step[a];
                if (++index[a] < shape[a]) break;
                at -= step[a] * shape[a];
                index[a] = 0;
            }
        }
        return new Tensor(shape, dst);
    }

    /// <summary>[a, b] → [b, a].</summary>
    public static Tensor Transpose2D(Tensor t) => Permute(t, 1, 0);

    /// <summary>Same data, new shape (row-major, so no copy is needed beyond the wrapper).</summary>
    public static Tensor Reshape(Tensor t, params int[] shape) => new(shape, t.Data);

    /// <summary>Concatenates along axis 0; all trailing dimensions must agree.</summary>
    public static Tensor Concat0(IReadOnlyList<Tensor> parts)
    {
        var rest = parts[0].Shape[1..];
        int rows = 0;
        foreach (var p in parts)
        {
            if (!p.Shape.AsSpan(1).SequenceEqual(rest))
                throw new ArgumentException($"Cannot stack {p.ShapeString} with {parts[0].ShapeString}.", nameof(parts));
            rows += p.Shape[0];
        }
        var data = new float[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts) { p.Data.CopyTo(data, at); at += p.Length; }
        return new Tensor([rows, .. rest], data);
    }
}
