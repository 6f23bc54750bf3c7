using System.Text;

namespace MLNet.MemoryTokens.Data;

/// <summary>
/// Splits one CSV line into fields (RFC 4180 quoting: <c>"a,b"</c>, <c>""</c> for a quote). Whitespace around a field is
/// dropped, inside quotes it is kept. A quoted field cannot span lines: a dataset list has no use for newlines in names.
/// </summary>
internal static class CsvFields
{
    /// <summary>The fields of <paramref name="line"/>; a <see cref="FormatException"/> says what is wrong and at which column.</summary>
    public static List<string> Split(string line)
    {
        var fields = new List<string>();
        int i = 0;
        while (true)
        {
            while (i < line.Length && line[i] is ' ' or '\t') i++;
            if (i < line.Length && line[i] == '"')
            {
                int open = i++;
                var field = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length) throw new FormatException($"the quote opened at column {open + 1} is never closed.");
                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    field.Append(line[i++]);
                }
                while (i < line.Length && line[i] is ' ' or '\t') i++;
                if (i < line.Length && line[i] != ',')
                    throw new FormatException($"unexpected '{line[i]}' at column {i + 1} after a closing quote.");
                fields.Add(field.ToString());
            }
            else
            {
                int comma = line.IndexOf(',', i);
                int end = comma < 0 ? line.Length : comma;
                fields.Add(line[i..end].Trim());
                i = end;
            }
            if (i >= line.Length) return fields;
            i++; // past the comma; a trailing comma leaves one empty field
            if (i == line.Length) { fields.Add(""); return fields; }
        }
    }
}
