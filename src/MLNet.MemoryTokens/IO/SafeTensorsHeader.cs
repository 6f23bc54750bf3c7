using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MLNet.MemoryTokens.IO;

/// <summary>One tensor of a safetensors header; <see cref="Begin"/>/<see cref="End"/> are relative to the data buffer.</summary>
internal sealed record SafeTensorsEntry(string Name, ElementType Type, int[] Shape, long Count, long Begin, long End);

/// <summary>The JSON header of a safetensors file: parsed and checked against the data buffer, or built for writing.</summary>
/// <remarks>Layout: u64 little-endian header length, the UTF-8 JSON header (padded with spaces), then the data buffer,
/// which the tensors' <c>data_offsets</c> must tile exactly: no gaps, no overlaps, nothing after the last tensor.</remarks>
internal static class SafeTensorsHeader
{
    /// <summary>Headers beyond this are refused as corrupt rather than allocated (the reference implementation's limit).</summary>
    public const long MaxBytes = 100_000_000;

    const string MetadataKey = "__metadata__";
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Parses <paramref name="json"/> (the header bytes) and checks every entry against a data buffer of
    /// <paramref name="dataLength"/> bytes starting at file offset <paramref name="dataStart"/>. Entries come back in header order.</summary>
    public static (List<SafeTensorsEntry> Entries, Dictionary<string, string> Metadata) Parse(
        string path, ReadOnlyMemory<byte> json, long dataStart, long dataLength)
    {
        JsonDocument doc;
        try
        {
            // JsonDocument defers UTF-8 checks to string access, which would throw outside this try.
            StrictUtf8.GetCharCount(json.Span);
            doc = JsonDocument.Parse(json);
        }
        catch (DecoderFallbackException ex)
        {
            long at = 8 + ex.Index;
            throw new CheckpointException(path, $"the safetensors header is not valid JSON: invalid UTF-8 at byte offset {at}", byteOffset: at, inner: ex);
        }
        catch (JsonException ex)
        {
            // The header is one line, so the position in the line is the offset into the header.
            long at = 8 + (ex.BytePositionInLine ?? 0);
            throw new CheckpointException(path, $"the safetensors header is not valid JSON (near byte offset {at}): {ex.Message}", byteOffset: at, inner: ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(path, $"the safetensors header is a JSON {doc.RootElement.ValueKind}, not an object", byteOffset: 8);

            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>();
            var seen = new HashSet<string>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new CheckpointException(path, $"the header lists '{prop.Name}' twice", prop.Name);
                if (prop.Name == MetadataKey) ReadMetadata(path, prop.Value, metadata);
                else entries.Add(ReadEntry(path, prop.Name, prop.Value, dataStart));
            }
            CheckTiling(path, entries, dataStart, dataLength);
            return (entries, metadata);
        }
    }

    static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, $"'{MetadataKey}' must be an object of strings, found {value.ValueKind}", MetadataKey);
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException(path, $"'{MetadataKey}' value of '{m.Name}' must be a string, found {m.Value.ValueKind}", m.Name);
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    static SafeTensorsEntry ReadEntry(string path, string name, JsonElement value, long dataStart)
    {
        CheckpointException Bad(string what) => new(path, $"tensor '{name}': {what}", name);

        if (value.ValueKind != JsonValueKind.Object) throw Bad($"header entry is a JSON {value.ValueKind}, not an object");
        if (!value.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw Bad("header entry has no string 'dtype'");
        string dtype = dtypeEl.GetString()!;
        var type = ElementTypes.FromSafeTensors(dtype)
            ?? throw Bad($"unsupported dtype '{dtype}' (readable: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");

        if (!value.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw Bad("header entry has no 'shape' list");
        var shape = new int[shapeEl.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                throw Bad($"shape {shapeEl.GetRawText()} is not a list of integers");
            if (dim < 0) throw Bad($"shape {shapeEl.GetRawText()} has a negative dimension");
            if (dim > int.MaxValue || (dim != 0 && count > Limits.MaxTensorElements / dim))
                throw Bad($"shape {shapeEl.GetRawText()} has more than {Limits.MaxTensorElements:N0} elements, the limit for one tensor");
            shape[i++] = (int)dim;
            count *= dim;
        }

        if (!value.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2
            || !TryGetOffset(offEl[0], out long begin) || !TryGetOffset(offEl[1], out long end))
            throw Bad("'data_offsets' must be two non-negative integers [begin, end]");
        if (end < begin)
            throw new CheckpointException(path, $"tensor '{name}': data_offsets [{begin}, {end}] end before they begin", name, dataStart + begin);
        long need = count * type.Size();
        if (end - begin != need)
            throw new CheckpointException(path,
                $"tensor '{name}': data_offsets [{begin}, {end}] span {end - begin} bytes but {dtype} {Tensor.FormatShape(shape)} needs {need}",
                name, dataStart + begin);
        return new SafeTensorsEntry(name, type, shape, count, begin, end);
    }

    static bool TryGetOffset(JsonElement e, out long value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value) && value >= 0;
    }

    /// <summary>The entries, sorted by offset, must cover the data buffer exactly once.</summary>
    static void CheckTiling(string path, List<SafeTensorsEntry> entries, long dataStart, long dataLength)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();

        // Truncation first: it is the commonest corruption and the end offsets say exactly what is missing.
        foreach (var e in sorted)
            if (e.End > dataLength)
                throw new CheckpointException(path,
                    $"file is truncated at byte offset {dataStart + dataLength}: tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] " +
                    $"need it to run to {dataStart + e.End}", e.Name, dataStart + dataLength);

        long covered = 0;
        SafeTensorsEntry? previous = null;
        foreach (var e in sorted)
        {
            if (e.Begin < covered)
                throw new CheckpointException(path,
                    $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous!.Name}' [{previous.Begin}, {previous.End}]",
                    e.Name, dataStart + e.Begin);
            if (e.Begin > covered)
                throw new CheckpointException(path,
                    $"data bytes [{covered}, {e.Begin}) before tensor '{e.Name}' (from byte offset {dataStart + covered}) belong to no tensor",
                    e.Name, dataStart + covered);
            covered = e.End;
            previous = e;
        }
        if (covered != dataLength)
            throw new CheckpointException(path,
                $"{dataLength - covered} bytes from byte offset {dataStart + covered} to the end of the file belong to no tensor" +
                (previous is null ? "" : $" (the last, '{previous.Name}', ends there)"),
                previous?.Name, dataStart + covered);
    }

    /// <summary>Builds the length prefix + JSON header for <paramref name="names"/> written in that order as <paramref name="dtype"/>:
    /// compact JSON, <c>__metadata__</c> first (keys sorted ordinally), padded with spaces to a multiple of 8 bytes
    /// so the data buffer starts aligned — the same bytes the Hugging Face writer produces.</summary>
    public static byte[] Build(IReadOnlyList<string> names, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata, TensorDType dtype)
    {
        var json = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var key in metadata.Keys.Order(StringComparer.Ordinal)) w.WriteString(key, metadata[key]);
                w.WriteEndObject();
            }
            int size = ElementTypes.From(dtype).Size();
            long offset = 0;
            foreach (var name in names)
            {
                var t = tensors[name];
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype.ToString());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset += (long)t.Length * size);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int padded = (json.WrittenCount + 7) / 8 * 8;
        var bytes = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        json.WrittenSpan.CopyTo(bytes.AsSpan(8));
        bytes.AsSpan(8 + json.WrittenCount).Fill((byte)' ');
        return bytes;
    }
}
