using System.Text.Json;

namespace MLNet.MemoryTokens.IO;

// TEMPORARY minimal reader (F32 only), replaced by the full IO layer when it lands.
public sealed class SafeTensorsFile
{
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    SafeTensorsFile(Dictionary<string, Tensor> t, Dictionary<string, string> m) { Tensors = t; Metadata = m; }

    public static SafeTensorsFile Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var tensors = new Dictionary<string, Tensor>();
        var meta = new Dictionary<string, string>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") { foreach (var m in p.Value.EnumerateObject()) meta[m.Name] = m.Value.GetString()!; continue; }
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var data = new float[(off[1] - off[0]) / 4];
            Buffer.BlockCopy(bytes, (int)(8 + n + off[0]), data, 0, data.Length * 4);
            tensors[p.Name] = new Tensor(shape, data);
        }
        return new SafeTensorsFile(tensors, meta);
    }
}
