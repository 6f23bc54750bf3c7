using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace MLNet.MemoryTokens.Fuzz;

/// <summary>Byte-level mutations (bit flips, interesting bytes and integers, chunk deletes, inserts, duplicates, truncation,
/// splices with another seed) and, for JSON, structural ones (a field removed, nulled, retyped, made huge). Bounded: an
/// input never grows past <see cref="MaxBytes"/>.</summary>
public sealed class Mutator(Random rng, int maxBytes)
{
    public int MaxBytes { get; } = maxBytes;

    static readonly byte[] InterestingBytes = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x10, 0x20, (byte)'0', (byte)'9', (byte)'{', (byte)'"'];
    static readonly long[] InterestingInts = [0, 1, -1, 2, 7, 8, 15, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, unchecked((int)0x80000000), 0xFFFFFFFF, 65537, 4096, 1 << 20];

    public byte[] Mutate(byte[] seed, IReadOnlyList<byte[]> others, bool json)
    {
        if (json && rng.Next(2) == 0 && TryMutateJson(seed) is byte[] structured) return Bound(structured);
        var data = new List<byte>(seed);
        int steps = 1 + rng.Next(4);
        for (int s = 0; s < steps; s++)
        {
            switch (rng.Next(9))
            {
                case 0: FlipBits(data); break;
                case 1: SetByte(data); break;
                case 2: SetInteger(data); break;
                case 3: DeleteChunk(data); break;
                case 4: InsertRandom(data); break;
                case 5: DuplicateChunk(data); break;
                case 6: Truncate(data); break;
                case 7: Splice(data, others[rng.Next(others.Count)]); break;
                default: if (json) NumberText(data); else SetByte(data); break;
            }
        }
        return Bound([.. data]);
    }

    byte[] Bound(byte[] data) => data.Length <= MaxBytes ? data : data[..MaxBytes];

    int Offset(List<byte> d) => d.Count == 0 ? 0 : rng.Next(d.Count);

    void FlipBits(List<byte> d)
    {
        if (d.Count == 0) return;
        for (int n = 1 + rng.Next(8); n > 0; n--) { int i = Offset(d); d[i] ^= (byte)(1 << rng.Next(8)); }
    }

    void SetByte(List<byte> d)
    {
        if (d.Count == 0) return;
        d[Offset(d)] = rng.Next(3) == 0 ? (byte)rng.Next(256) : InterestingBytes[rng.Next(InterestingBytes.Length)];
    }

    void SetInteger(List<byte> d)
    {
        int width = rng.Next(2) == 0 ? 2 : 4;
        if (d.Count < width) return;
        int at = rng.Next(d.Count - width + 1);
        long v = rng.Next(4) == 0 ? rng.Next() : InterestingInts[rng.Next(InterestingInts.Length)];
        Span<byte> b = stackalloc byte[4];
        bool big = rng.Next(2) == 0;   // JPEG, PNG, IDX are big-endian; BMP, safetensors, npy little-endian
        if (width == 2) { if (big) BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)v); else BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); }
        else { if (big) BinaryPrimitives.WriteUInt32BigEndian(b, (uint)v); else BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)v); }
        for (int i = 0; i < width; i++) d[at + i] = b[i];
    }

    void DeleteChunk(List<byte> d)
    {
        if (d.Count < 2) return;
        int at = Offset(d), n = 1 + rng.Next(Math.Min(64, d.Count - at));
        d.RemoveRange(at, Math.Min(n, d.Count - at));
    }

    void InsertRandom(List<byte> d)
    {
        int n = 1 + rng.Next(16);
        var bytes = new byte[n];
        for (int i = 0; i < n; i++) bytes[i] = rng.Next(2) == 0 ? (byte)rng.Next(256) : InterestingBytes[rng.Next(InterestingBytes.Length)];
        d.InsertRange(d.Count == 0 ? 0 : rng.Next(d.Count + 1), bytes);
    }

    void DuplicateChunk(List<byte> d)
    {
        if (d.Count < 2) return;
        int at = Offset(d), n = 1 + rng.Next(Math.Min(256, d.Count - at));
        d.InsertRange(rng.Next(d.Count + 1), d.GetRange(at, Math.Min(n, d.Count - at)));
    }

    void Truncate(List<byte> d)
    {
        if (d.Count > 1) { int keep = rng.Next(1, d.Count); d.RemoveRange(keep, d.Count - keep); }
    }

    void Splice(List<byte> d, byte[] other)
    {
        if (other.Length == 0 || d.Count == 0) return;
        int from = rng.Next(other.Length), n = 1 + rng.Next(Math.Min(512, other.Length - from));
        int at = Offset(d);
        int replace = Math.Min(n, d.Count - at);
        d.RemoveRange(at, replace);
        d.InsertRange(at, other.AsSpan(from, Math.Min(n, other.Length - from)).ToArray());
    }

    /// <summary>A run of ASCII digits replaced by an interesting number (lengths, sizes, counts written as text: PPM headers, JSON).</summary>
    void NumberText(List<byte> d)
    {
        var starts = new List<int>();
        for (int i = 0; i < d.Count; i++) if (d[i] is >= (byte)'0' and <= (byte)'9' && (i == 0 || d[i - 1] is < (byte)'0' or > (byte)'9')) starts.Add(i);
        if (starts.Count == 0) return;
        int at = starts[rng.Next(starts.Count)], end = at;
        while (end < d.Count && d[end] is >= (byte)'0' and <= (byte)'9') end++;
        string[] numbers = ["0", "1", "-1", "4096", "4097", "65536", "65537", "2147483647", "2147483648", "99999999999999999999", "1e308", "3.5", "1025"];
        d.RemoveRange(at, end - at);
        d.InsertRange(at, Encoding.ASCII.GetBytes(numbers[rng.Next(numbers.Length)]));
    }

    byte[]? TryMutateJson(byte[] seed)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(seed); }
        catch (System.Text.Json.JsonException) { return null; }
        if (root is null) return null;
        var nodes = new List<(JsonNode? Parent, string? Key, int Index, JsonNode? Node)>();
        void Walk(JsonNode? parent, string? key, int index, JsonNode? node, int depth)
        {
            nodes.Add((parent, key, index, node));
            if (depth > 6) return;
            if (node is JsonObject o) foreach (var (k, v) in o.ToArray()) Walk(o, k, -1, v, depth + 1);
            else if (node is JsonArray a) for (int i = 0; i < a.Count; i++) Walk(a, null, i, a[i], depth + 1);
        }
        Walk(null, null, -1, root, 0);
        var (p, name, idx, _) = nodes[rng.Next(nodes.Count)];
        if (p is null) return null;
        JsonNode? replacement = rng.Next(9) switch
        {
            0 => null,
            1 => JsonValue.Create("x"),
            2 => JsonValue.Create(2147483648L),
            3 => JsonValue.Create(-1),
            4 => JsonValue.Create(1e308),
            5 => new JsonArray(),
            6 => new JsonObject(),
            7 => JsonValue.Create(true),
            _ => JsonValue.Create(rng.Next(0, 5000)),
        };
        if (p is JsonObject po && name is not null)
        {
            if (rng.Next(4) == 0) po.Remove(name);
            else po[name] = replacement;
            if (rng.Next(8) == 0) po["unknown_" + rng.Next(100)] = 1;
        }
        else if (p is JsonArray pa)
        {
            if (rng.Next(3) == 0) pa.RemoveAt(idx);
            else pa[idx] = replacement;
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }
}
