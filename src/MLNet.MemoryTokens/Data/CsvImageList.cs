using System.Globalization;

namespace MLNet.MemoryTokens.Data;

/// <summary>
/// Reads a <c>path,label</c> CSV into a <see cref="FileListDataset"/>. Every row is checked at open — its label and that
/// its image file exists — so a bad list fails before training starts, with the CSV's path and line number.
/// </summary>
internal static class CsvImageList
{
    /// <summary>Integer labels up to this many classes; beyond it a typo (a stray 1000000) would allocate absurd class lists.</summary>
    const int MaxIntegerLabel = 1 << 16;

    readonly record struct Row(int Line, string Path, string Label);

    public static FileListDataset Read(string csvPath, IReadOnlyList<string>? classNames)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(csvPath);
        if (!File.Exists(csvPath)) throw new FileNotFoundException($"CSV file not found: {csvPath}", csvPath);
        IO.InputFile.Check(csvPath, Limits.MaxTextFileBytes, "image list");
        string csv = Path.GetFullPath(csvPath);
        string baseDir = Path.GetDirectoryName(csv)!;

        var rows = ReadRows(csv, baseDir);
        if (rows.Count == 0) throw new ArgumentException($"{csv} lists no images.", nameof(csvPath));

        string[] names = classNames is null ? InferClassNames(csv, rows) : [.. classNames];
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = names.Length - 1; i >= 0; i--) byName[names[i]] = i;
        var labels = new int[rows.Count];
        for (int r = 0; r < rows.Count; r++)
            labels[r] = ResolveLabel(csv, rows[r], names, byName);

        foreach (var row in rows)
            if (!File.Exists(row.Path))
                throw new FileNotFoundException($"{csv}, line {row.Line}: image file not found: {row.Path}", row.Path);

        return new FileListDataset($"CSV {csv}", rows.Select(r => r.Path).ToArray(), labels, names);
    }

    static List<Row> ReadRows(string csv, string baseDir)
    {
        var rows = new List<Row>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(csv))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            List<string> fields;
            try { fields = CsvFields.Split(line); }
            catch (FormatException e) { throw new InvalidDataException($"{csv}, line {lineNumber}: {e.Message}", e); }
            if (fields.Count != 2)
                throw new InvalidDataException($"{csv}, line {lineNumber}: expected 2 fields (path,label), found {fields.Count}.");

            if (fields[0].Length == 0) throw new InvalidDataException($"{csv}, line {lineNumber}: the path is empty.");
            string path = Resolve(baseDir, fields[0]);
            if (rows.Count == 0 && IsHeader(fields[0], path)) continue;
            if (fields[1].Length == 0) throw new InvalidDataException($"{csv}, line {lineNumber}: the label is empty.");
            rows.Add(new Row(lineNumber, path, fields[1]));
        }
        return rows;
    }

    /// <summary>
    /// The first row is a header when its path field is neither an existing file nor named like an image
    /// ("path", "filename", "image"…); a first data row whose image is missing still ends in .jpg/.png and is reported.
    /// </summary>
    static bool IsHeader(string field, string resolved) =>
        !ImageFolder.Extensions.Contains(Path.GetExtension(field), StringComparer.OrdinalIgnoreCase) && !File.Exists(resolved);

    static string Resolve(string baseDir, string field)
    {
        // Lists written on Windows use backslashes; elsewhere a backslash would silently become part of a file name.
        if (Path.DirectorySeparatorChar == '/') field = field.Replace('\\', '/');
        return Path.GetFullPath(Path.Combine(baseDir, field));
    }

    /// <summary>Integer labels name classes "0".."max"; otherwise the sorted distinct names. Mixing the two is an error.</summary>
    static string[] InferClassNames(string csv, List<Row> rows)
    {
        bool integers = IsInteger(rows[0].Label, out _);
        int max = 0;
        foreach (var row in rows)
        {
            bool isInteger = IsInteger(row.Label, out long value);
            if (isInteger != integers)
                throw new InvalidDataException(
                    $"{csv}, line {row.Line}: label '{row.Label}' is {(isInteger ? "an integer" : "a class name")}, but line " +
                    $"{rows[0].Line}'s '{rows[0].Label}' is {(integers ? "an integer" : "a class name")}; " +
                    "pass classNames to mix names and indices.");
            if (!isInteger) continue;
            if (value < 0 || value >= MaxIntegerLabel)
                throw new InvalidDataException($"{csv}, line {row.Line}: integer label {value} is outside 0..{MaxIntegerLabel - 1}.");
            max = Math.Max(max, (int)value);
        }
        return integers
            ? [.. Enumerable.Range(0, max + 1).Select(i => i.ToString(CultureInfo.InvariantCulture))]
            : [.. rows.Select(r => r.Label).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    /// <summary>A class name first, so a class literally called "3" wins over index 3.</summary>
    static int ResolveLabel(string csv, Row row, string[] names, Dictionary<string, int> byName)
    {
        if (byName.TryGetValue(row.Label, out int named)) return named;
        if (IsInteger(row.Label, out long value) && value >= 0 && value < names.Length) return (int)value;
        throw new InvalidDataException(
            $"{csv}, line {row.Line}: label '{row.Label}' is neither one of the {names.Length} class names " +
            $"({Preview(names)}) nor an integer in 0..{names.Length - 1}.");
    }

    static bool IsInteger(string text, out long value) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    static string Preview(string[] names) =>
        names.Length <= 12 ? string.Join(", ", names) : string.Join(", ", names.Take(12)) + ", …";
}
