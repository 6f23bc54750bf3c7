using System.Text;

namespace MLNet.MemoryTokens.IO;

/// <summary>How a state dict differs from what a model expects: keys missing, keys unexpected, and keys with the wrong shape.</summary>
public sealed record StateDictReport(
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<(string Key, int[] Expected, int[] Actual)> WrongShape)
{
    /// <summary>Shapes of the missing (expected shape) and unexpected (actual shape) keys, for <see cref="Describe"/>.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; init; } = new Dictionary<string, int[]>();

    /// <summary>True when the state dict matches exactly.</summary>
    public bool IsClean => Missing.Count == 0 && Unexpected.Count == 0 && WrongShape.Count == 0;

    /// <summary>Every difference, one group per line, with shapes.</summary>
    public string Describe()
    {
        if (IsClean) return "the state dict matches: no missing, unexpected or wrong-shaped keys";
        var sb = new StringBuilder();
        void Group(string title, IEnumerable<string> items, int count)
        {
            if (count == 0) return;
            if (sb.Length > 0) sb.AppendLine();
            sb.Append($"{count} {title}: ").AppendJoin(", ", items);
        }
        string WithShape(string key) => Shapes.TryGetValue(key, out var s) ? $"{key} {Tensor.FormatShape(s)}" : key;

        Group("missing", Missing.Select(WithShape), Missing.Count);
        Group("unexpected", Unexpected.Select(WithShape), Unexpected.Count);
        Group("wrong shape", WrongShape.Select(w => $"{w.Key} expected {Tensor.FormatShape(w.Expected)} got {Tensor.FormatShape(w.Actual)}"), WrongShape.Count);
        return sb.ToString();
    }
}
