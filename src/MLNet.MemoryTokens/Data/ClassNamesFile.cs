namespace MLNet.MemoryTokens.Data;

/// <summary>Reads a <c>classes.txt</c>: one class name per line, line i naming label i; blank lines are skipped.</summary>
internal static class ClassNamesFile
{
    public const string FileName = "classes.txt";

    public static string[] Read(string path)
    {
        var names = new List<string>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var line in IO.InputFile.ReadLines(path, Limits.MaxTextFileBytes, "class names file"))
        {
            lineNumber++;
            string name = line.Trim();
            if (name.Length == 0) continue;
            if (!seen.TryAdd(name, lineNumber))
                throw new InvalidDataException($"{path}, line {lineNumber}: class '{name}' already appears on line {seen[name]}.");
            names.Add(name);
        }
        if (names.Count == 0) throw new InvalidDataException($"{path} names no classes.");
        return [.. names];
    }
}
