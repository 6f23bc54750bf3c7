namespace MLNet.MemoryTokens.IO;

/// <summary>Checks a state dict against the shapes a model expects, like PyTorch's strict <c>load_state_dict</c>.</summary>
public static class StateDictValidator
{
    /// <summary>Lists missing keys (in expected order), unexpected keys (in actual order) and shape mismatches.</summary>
    public static StateDictReport Compare(IReadOnlyDictionary<string, int[]> expectedShapes, IReadOnlyDictionary<string, Tensor> actual)
    {
        ArgumentNullException.ThrowIfNull(expectedShapes);
        ArgumentNullException.ThrowIfNull(actual);
        var missing = new List<string>();
        var wrong = new List<(string, int[], int[])>();
        var shapes = new Dictionary<string, int[]>();
        foreach (var (key, shape) in expectedShapes)
        {
            if (!actual.TryGetValue(key, out var t)) { missing.Add(key); shapes[key] = shape; }
            else if (!t.ShapeEquals(shape)) wrong.Add((key, shape, t.Shape));
        }
        var unexpected = new List<string>();
        foreach (var (key, t) in actual)
            if (!expectedShapes.ContainsKey(key)) { unexpected.Add(key); shapes[key] = t.Shape; }
        return new StateDictReport(missing, unexpected, wrong) { Shapes = shapes };
    }

    /// <summary>Throws a <see cref="CheckpointException"/> naming <paramref name="source"/> and listing every missing, unexpected
    /// and wrong-shaped key (with shapes) unless the state dict matches exactly.</summary>
    public static void EnsureStrict(string source, IReadOnlyDictionary<string, int[]> expectedShapes, IReadOnlyDictionary<string, Tensor> actual)
    {
        var report = Compare(expectedShapes, actual);
        if (report.IsClean) return;
        string? first = report.Missing.FirstOrDefault() ?? report.Unexpected.FirstOrDefault() ?? report.WrongShape[0].Key;
        throw new CheckpointException(source, $"the state dict does not fit the model:{Environment.NewLine}{report.Describe()}", first);
    }
}
