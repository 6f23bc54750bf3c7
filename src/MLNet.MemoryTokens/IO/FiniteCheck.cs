using System.Numerics.Tensors;

namespace MLNet.MemoryTokens.IO;

/// <summary>Finds NaN or ±∞ in weights as they are read, so a corrupt checkpoint or adapter is refused by name instead of
/// turning every prediction into NaN.</summary>
public static class FiniteCheck
{
    /// <summary>The index of the first non-finite element, or null when all are finite.</summary>
    public static int? FirstNonFinite(ReadOnlySpan<float> data)
    {
        // a block's sum is finite when every element is (a NaN or ±∞ makes it NaN or ±∞): a vectorised pass, and an
        // element-by-element scan only of a block whose sum is not (it may also just have overflowed)
        const int Block = 4096;
        for (int start = 0; start < data.Length; start += Block)
        {
            var block = data.Slice(start, Math.Min(Block, data.Length - start));
            if (float.IsFinite(TensorPrimitives.Sum(block))) continue;
            for (int i = 0; i < block.Length; i++) if (!float.IsFinite(block[i])) return start + i;
        }
        return null;
    }

    /// <summary>Throws a <see cref="CheckpointException"/> naming the first tensor of <paramref name="tensors"/> that holds a
    /// non-finite value (and where), unless <paramref name="allow"/>.</summary>
    public static void Ensure(IEnumerable<KeyValuePair<string, Tensor>> tensors, string file, bool allow, string hint)
    {
        if (allow) return;
        foreach (var (name, t) in tensors)
            if (FirstNonFinite(t.Data) is int i)
                throw new CheckpointException(file, $"tensor '{name}' holds {t.Data[i]} at element {i}: the weights are corrupt. {hint}", name);
    }
}
