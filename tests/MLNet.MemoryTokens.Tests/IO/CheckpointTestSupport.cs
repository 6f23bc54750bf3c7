using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Xunit;

namespace MLNet.MemoryTokens.Tests.IO;

/// <summary>Fixture paths, exact tensor comparison and hand-built safetensors bytes for the checkpoint I/O tests.</summary>
internal static class CheckpointTestSupport
{
    /// <summary>A fixture written by reference/make_checkpoint_fixtures.py.</summary>
    public static string Fixture(string name) => TestPaths.Fixture("checkpoints", name);

    /// <summary>Tiny ViT of the fixtures: D=8, 2 blocks, 2 heads, patch 4, img 8 (5 tokens), MLP 32, 5 classes.</summary>
    public static Dictionary<string, int[]> TinyVitShapes() => VitShapes(dim: 8, depth: 2, patch: 4, tokens: 5, mlp: 32, classes: 5);

    /// <summary>timm VisionTransformer state-dict shapes (class token, no distillation token).</summary>
    public static Dictionary<string, int[]> VitShapes(int dim, int depth, int patch, int tokens, int mlp, int classes)
    {
        var s = new Dictionary<string, int[]>
        {
            ["cls_token"] = [1, 1, dim],
            ["pos_embed"] = [1, tokens, dim],
            ["patch_embed.proj.weight"] = [dim, 3, patch, patch],
            ["patch_embed.proj.bias"] = [dim],
        };
        for (int i = 0; i < depth; i++)
        {
            string b = $"blocks.{i}.";
            s[b + "norm1.weight"] = [dim]; s[b + "norm1.bias"] = [dim];
            s[b + "attn.qkv.weight"] = [3 * dim, dim]; s[b + "attn.qkv.bias"] = [3 * dim];
            s[b + "attn.proj.weight"] = [dim, dim]; s[b + "attn.proj.bias"] = [dim];
            s[b + "norm2.weight"] = [dim]; s[b + "norm2.bias"] = [dim];
            s[b + "mlp.fc1.weight"] = [mlp, dim]; s[b + "mlp.fc1.bias"] = [mlp];
            s[b + "mlp.fc2.weight"] = [dim, mlp]; s[b + "mlp.fc2.bias"] = [dim];
        }
        s["norm.weight"] = [dim]; s["norm.bias"] = [dim];
        s["head.weight"] = [classes, dim]; s["head.bias"] = [classes];
        return s;
    }

    /// <summary>Same shape and the same float bits everywhere; any NaN matches any NaN (torch's own bf16 conversions
    /// disagree on the payload: 0x7FC0 scalar, 0xFFFF vectorised).</summary>
    public static void AssertBitEqual(Tensor expected, Tensor actual, string key)
    {
        Assert.True(expected.ShapeEquals(actual.Shape), $"{key}: shape {actual.ShapeString}, expected {expected.ShapeString}");
        for (int i = 0; i < expected.Length; i++)
        {
            int e = BitConverter.SingleToInt32Bits(expected.Data[i]), a = BitConverter.SingleToInt32Bits(actual.Data[i]);
            if (e != a && !(float.IsNaN(expected.Data[i]) && float.IsNaN(actual.Data[i]))) Assert.Fail($"{key}[{i}]: {actual.Data[i]:R} (0x{a:X8}), expected {expected.Data[i]:R} (0x{e:X8})");
        }
    }

    public static void AssertSameStateDict(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, t) in expected) AssertBitEqual(t, actual[key], key);
    }

    /// <summary>The JSON header and data buffer of a safetensors file's bytes.</summary>
    public static (JsonObject Header, byte[] Data) Split(byte[] file)
    {
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        return (JsonNode.Parse(Encoding.UTF8.GetString(file, 8, n))!.AsObject(), file[(8 + n)..]);
    }

    /// <summary>A safetensors file from a header (any text, valid or not) and a data buffer.</summary>
    public static byte[] Join(string header, byte[] data) => Join(Encoding.UTF8.GetBytes(header), data);

    public static byte[] Join(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    public static byte[] Join(JsonObject header, byte[] data) => Join(header.ToJsonString(), data);

    /// <summary>[0, 1, 2, …] as F32 tensors data, <paramref name="count"/> floats.</summary>
    public static byte[] FloatBytes(int count) => Enumerable.Range(0, count).SelectMany(i => BitConverter.GetBytes((float)i)).ToArray();
}

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("mmt-io-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, byte[] bytes)
    {
        var path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
