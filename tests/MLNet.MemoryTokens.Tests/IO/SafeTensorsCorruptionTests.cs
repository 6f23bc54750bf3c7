using System.Buffers.Binary;
using System.Text.Json.Nodes;
using MLNet.MemoryTokens.IO;
using Xunit;
using static MLNet.MemoryTokens.Tests.IO.CheckpointTestSupport;

namespace MLNet.MemoryTokens.Tests.IO;

/// <summary>Damaged safetensors files fail with a <see cref="CheckpointException"/> naming the file and the key or byte offset.</summary>
public class SafeTensorsCorruptionTests : IDisposable
{
    readonly TempDir dir = new();
    static readonly byte[] Good = File.ReadAllBytes(Fixture("vit_tiny_timm_f32.safetensors"));

    public void Dispose() => dir.Dispose();

    CheckpointException ReadFails(byte[] bytes, string name = "bad.safetensors")
    {
        var path = dir.Write(name, bytes);
        var ex = Assert.Throws<CheckpointException>(() => SafeTensorsFile.Read(path));
        Assert.Contains(name, ex.Message);
        Assert.Equal(path, ex.FilePath);
        return ex;
    }

    static long DataStart(byte[] file) => 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(file);

    [Theory]
    [InlineData("start", 0)]
    [InlineData("start", 5)]
    [InlineData("start", 8)]     // just the header length
    [InlineData("start", 300)]   // inside the JSON header
    [InlineData("data", 1)]      // 1 byte into the first tensor
    [InlineData("data", 2000)]   // inside a middle tensor
    [InlineData("end", -5)]      // inside the last tensor
    public void Truncated_file_names_the_byte_offset_and_the_cut_tensor(string from, int delta)
    {
        long dataStart = DataStart(Good);
        int length = from switch { "start" => delta, "data" => (int)dataStart + delta, _ => Good.Length + delta };

        var ex = ReadFails(Good[..length]);

        Assert.Equal(length, ex.ByteOffset);
        Assert.Contains($"byte offset {length}", ex.Message);
        if (length > dataStart)
        {
            // The tensor whose bytes the cut falls in is the one named.
            var (header, _) = Split(Good);
            long at = length - dataStart;
            string cutKey = header.Where(p => p.Key != "__metadata__")
                .Single(p => (long)p.Value!["data_offsets"]![0]! <= at && at < (long)p.Value!["data_offsets"]![1]!).Key;
            Assert.Equal(cutKey, ex.Key);
            Assert.Contains($"'{cutKey}'", ex.Message);
            Assert.Contains("truncated", ex.Message);
        }
    }

    [Theory]
    [InlineData(1_000_000UL)]        // longer than the file
    [InlineData(200_000_000UL)]      // absurd
    [InlineData(ulong.MaxValue)]
    public void Header_length_past_the_end_or_absurd_is_refused(ulong headerLength)
    {
        var bytes = (byte[])Good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);

        var ex = ReadFails(bytes);

        Assert.Contains($"header length {headerLength}", ex.Message);
        Assert.Contains(headerLength > 100_000_000 ? "absurd" : "truncated", ex.Message);
    }

    [Theory]
    [InlineData("{\"a\": {\"dtype\": \"F32\", ")]
    [InlineData("not json at all")]
    [InlineData("{\"a\":1,}")]
    public void Garbage_json_is_reported_as_such(string header)
    {
        var ex = ReadFails(Join(header, []));
        Assert.Contains("not valid JSON", ex.Message);
        Assert.NotNull(ex.ByteOffset);
    }

    [Fact]
    public void Invalid_utf8_in_the_header_is_reported_as_invalid_json()
    {
        var ex = ReadFails(Join([(byte)'{', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)':', (byte)'1', (byte)'}'], []));
        Assert.Contains("not valid JSON", ex.Message);
    }

    [Fact]
    public void Header_that_is_not_an_object_is_refused()
    {
        var ex = ReadFails(Join("[1, 2, 3]", []));
        Assert.Contains("not an object", ex.Message);
    }

    [Fact]
    public void Data_offsets_past_the_end_name_the_tensor()
    {
        var (header, data) = Split(Good);
        header["pos_embed"]!["data_offsets"] = new JsonArray(data.Length - 160 + 64, data.Length + 64);

        var ex = ReadFails(Join(header, data));

        Assert.Equal("pos_embed", ex.Key);
        Assert.Contains("'pos_embed'", ex.Message);
        Assert.Contains($"byte offset", ex.Message);
    }

    [Fact]
    public void Overlapping_offsets_name_both_tensors()
    {
        var (header, data) = Split(Good);
        header["norm.bias"]!["data_offsets"] = header["cls_token"]!["data_offsets"]!.DeepClone();  // both [1,1,8] / [8]: 32 bytes

        var ex = ReadFails(Join(header, data));

        Assert.Contains("overlap", ex.Message);
        Assert.Contains("'cls_token'", ex.Message);
        Assert.Contains("'norm.bias'", ex.Message);
    }

    [Fact]
    public void Offsets_that_end_before_they_begin_are_refused()
    {
        var (header, data) = Split(Good);
        var off = header["head.bias"]!["data_offsets"]!.AsArray();
        header["head.bias"]!["data_offsets"] = new JsonArray((long)off[1]!, (long)off[0]!);

        var ex = ReadFails(Join(header, data));

        Assert.Equal("head.bias", ex.Key);
        Assert.Contains("end before they begin", ex.Message);
    }

    [Fact]
    public void Offsets_that_disagree_with_shape_and_dtype_give_both_sizes()
    {
        var (header, data) = Split(Good);
        header["norm.weight"]!["shape"] = new JsonArray(9);

        var ex = ReadFails(Join(header, data));

        Assert.Equal("norm.weight", ex.Key);
        Assert.Contains("span 32 bytes but F32 [9] needs 36", ex.Message);
        Assert.Contains("'norm.weight'", ex.Message);
    }

    [Fact]
    public void Bytes_claimed_by_no_tensor_are_refused()
    {
        var (header, data) = Split(Good);
        header.Remove("head.bias");  // leaves a hole in the data buffer
        var hole = ReadFails(Join(header, data));
        Assert.Contains("belong to no tensor", hole.Message);
        Assert.Equal("head.weight", hole.Key);  // the next tensor after the hole (keys are laid out sorted)

        var trailing = ReadFails(Join(Split(Good).Header, [.. Split(Good).Data, 1, 2, 3, 4]), "trailing.safetensors");
        Assert.Contains("4 bytes from byte offset", trailing.Message);
        Assert.Contains("belong to no tensor", trailing.Message);
    }

    [Theory]
    [InlineData("Q4", "unsupported dtype 'Q4'")]
    [InlineData("F8_E4M3", "unsupported dtype 'F8_E4M3'")]
    public void Unknown_dtype_is_named_with_the_key(string dtype, string expected)
    {
        var (header, data) = Split(Good);
        header["head.bias"]!["dtype"] = dtype;

        var ex = ReadFails(Join(header, data));

        Assert.Equal("head.bias", ex.Key);
        Assert.Contains(expected, ex.Message);
        Assert.Contains("'head.bias'", ex.Message);
    }

    [Theory]
    [InlineData("""{"w":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}}""", "negative dimension")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}}""", "not a list of integers")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}""", "'data_offsets' must be two non-negative integers")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":["0","16"]}}""", "'data_offsets' must be two non-negative integers")]
    [InlineData("""{"w":{"shape":[4],"data_offsets":[0,16]}}""", "no string 'dtype'")]
    [InlineData("""{"w":{"dtype":"F32","data_offsets":[0,16]}}""", "no 'shape' list")]
    [InlineData("""{"w":[1,2]}""", "not an object")]
    [InlineData("""{"w":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,16]}}""", "the limit for one tensor")]
    [InlineData("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "lists 'w' twice")]
    public void Malformed_entries_name_the_key(string header, string expected)
    {
        var ex = ReadFails(Join(header, FloatBytes(4)));
        Assert.Equal("w", ex.Key);
        Assert.Contains(expected, ex.Message);
        Assert.Contains("'w'", ex.Message);
    }

    [Fact]
    public void Metadata_must_hold_strings()
    {
        var ex = ReadFails(Join("""{"__metadata__":{"epoch":3}}""", []));
        Assert.Equal("epoch", ex.Key);
        Assert.Contains("must be a string", ex.Message);
    }

    [Fact]
    public void Reader_never_lets_a_raw_exception_escape_on_random_damage()
    {
        // Flip bytes across the header and check every failure is a CheckpointException (or a clean read).
        var rng = new Random(99);
        int headerEnd = (int)DataStart(Good);
        for (int trial = 0; trial < 200; trial++)
        {
            var bytes = (byte[])Good.Clone();
            bytes[rng.Next(0, headerEnd)] = (byte)rng.Next(256);
            var path = dir.Write("fuzz.safetensors", bytes);
            try { SafeTensorsFile.Read(path); }
            catch (CheckpointException ex) { Assert.Contains("fuzz.safetensors", ex.Message); }
        }
    }
}
