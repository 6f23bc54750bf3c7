using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Data;

/// <summary>A view of chosen images of another dataset, in the chosen order; nothing is copied or decoded.</summary>
internal sealed class SubsetDataset : IImageDataset
{
    readonly IImageDataset _source;
    readonly int[] _indices;

    SubsetDataset(IImageDataset source, int[] indices) => (_source, _indices) = (source, indices);

    /// <summary>Checks every index against <paramref name="source"/>; a subset of a subset points straight at the original.</summary>
    public static SubsetDataset Create(IImageDataset source, IReadOnlyList<int> indices)
    {
        var own = new int[indices.Count];
        for (int i = 0; i < own.Length; i++)
        {
            int index = indices[i];
            if ((uint)index >= (uint)source.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), index,
                    $"Index {index} (position {i}) is outside the {source.Count} images of {source}.");
            own[i] = index;
        }
        if (source is SubsetDataset inner)
        {
            for (int i = 0; i < own.Length; i++) own[i] = inner._indices[own[i]];
            source = inner._source;
        }
        return new SubsetDataset(source, own);
    }

    public int Count => _indices.Length;
    public IReadOnlyList<string> ClassNames => _source.ClassNames;
    public int LabelOf(int index) => _source.LabelOf(Map(index));
    public string SourceOf(int index) => _source.SourceOf(Map(index));
    public RgbImage Load(int index) => _source.Load(Map(index));

    public override string ToString() => $"{Count} of {_source}";

    int Map(int index)
    {
        if ((uint)index >= (uint)_indices.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"The subset has {_indices.Length} images.");
        return _indices[index];
    }
}
