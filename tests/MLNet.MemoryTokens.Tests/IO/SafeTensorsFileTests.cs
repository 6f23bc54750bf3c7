using System.Buffers.Binary;
using MLNet.MemoryTokens.IO;
using Xunit;
using static MLNet.MemoryTokens.Tests.IO.CheckpointTestSupport;

namespace MLNet.MemoryTokens.Tests.IO;

public class SafeTensorsFileTests
{
    static readonly Dictionary<string, string> FixtureMetadata = new()
    {
        ["format"] = "pt",
        ["fixture"] = "vit_tiny D=8 depth=2 heads=2 patch=4 img=8 classes=5",
    };

    [Fact]
    public void Reads_python_written_f32_fixture_in_file_order_with_metadata()
    {
        var file = SafeTensorsFile.Read(Fixture("vit_tiny_timm_f32.safetensors"));

        Assert.Equal(FixtureMetadata, file.Metadata);
        Assert.Equal(TinyVitShapes().Keys.Order(StringComparer.Ordinal), file.Tensors.Keys);  // Python wrote them sorted
        Assert.True(StateDictValidator.Compare(TinyVitShapes(), file.Tensors).IsClean);
    }

    [Theory]
    [InlineData(TensorDType.F32, "vit_tiny_timm_f32.safetensors")]
    [InlineData(TensorDType.F16, "vit_tiny_timm_f16.safetensors")]
    [InlineData(TensorDType.BF16, "vit_tiny_timm_bf16.safetensors")]
    public void Writing_the_f32_weights_reproduces_the_python_file_byte_for_byte(TensorDType dtype, string pythonFile)
    {
        // Same layout, JSON and padding as the reference writer, and the same round-to-nearest-even as numpy/torch.
        var weights = SafeTensorsFile.Read(Fixture("vit_tiny_timm_f32.safetensors"));
        using var dir = new TempDir();
        var ours = dir.File("ours.safetensors");

        SafeTensorsFile.Write(ours, weights.Tensors, weights.Metadata, dtype);

        Assert.Equal(File.ReadAllBytes(Fixture(pythonFile)), File.ReadAllBytes(ours));
    }

    [Fact]
    public void F16_and_bf16_fixtures_read_as_the_rounded_f32_weights()
    {
        var f32 = SafeTensorsFile.Read(Fixture("vit_tiny_timm_f32.safetensors")).Tensors;
        var f16 = SafeTensorsFile.Read(Fixture("vit_tiny_timm_f16.safetensors")).Tensors;
        var bf16 = SafeTensorsFile.Read(Fixture("vit_tiny_timm_bf16.safetensors")).Tensors;

        foreach (var (key, t) in f32)
        {
            AssertBitEqual(new Tensor(t.Shape, t.Data.Select(v => (float)(Half)v).ToArray()), f16[key], key);
            // bf16 keeps the top 16 bits of the f32, rounded to nearest even.
            var bf = t.Data.Select(v =>
            {
                uint bits = BitConverter.SingleToUInt32Bits(v);
                return BitConverter.UInt32BitsToSingle((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000);
            }).ToArray();
            AssertBitEqual(new Tensor(t.Shape, bf), bf16[key], key);
        }
    }

    [Theory]
    [InlineData("x.f16", "expected.f16")]
    [InlineData("x.bf16", "expected.bf16")]
    [InlineData("x.f64", "x.f32")]
    [InlineData("x.i64", "expected.i64")]
    public void Every_dtype_widens_exactly_as_numpy_and_torch_do(string stored, string expected)
    {
        var t = SafeTensorsFile.Read(Fixture("dtypes.safetensors")).Tensors;
        AssertBitEqual(t[expected], t[stored], stored);
    }

    [Fact]
    public void Small_integer_bool_scalar_and_empty_tensors_read()
    {
        var file = SafeTensorsFile.Read(Fixture("dtypes.safetensors"));
        var t = file.Tensors;

        Assert.Equal([-3f, 0f, 7f, 255f], t["x.i32"].Data);
        Assert.Equal([0f, 1f, 127f, 255f], t["x.u8"].Data);
        Assert.Equal([1f, 0f, 1f], t["x.bool"].Data);
        Assert.Empty(t["scalar"].Shape);
        Assert.Equal([2.5f], t["scalar"].Data);
        Assert.Equal([0, 3], t["empty"].Shape);
        Assert.Equal("dtype conversions", file.Metadata["purpose"]);
    }

    [Theory]
    [InlineData(TensorDType.F16, "expected.f16")]
    [InlineData(TensorDType.BF16, "expected.bf16")]
    public void Writer_rounds_ties_infinities_and_nan_like_numpy_and_torch(TensorDType dtype, string expected)
    {
        var t = SafeTensorsFile.Read(Fixture("dtypes.safetensors")).Tensors;
        using var dir = new TempDir();
        var path = dir.File("x.safetensors");

        SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["x"] = t["x.f32"] }, dtype: dtype);

        AssertBitEqual(t[expected], SafeTensorsFile.Read(path).Tensors["x"], "x");
    }

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Round_trip_keeps_values_shapes_metadata_and_sorts_keys(TensorDType dtype)
    {
        var rng = new Random(12345);
        Tensor Rand(params int[] shape)
        {
            var t = new Tensor(shape);
            for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(rng.NextDouble() * 8 - 4);
            return t;
        }
        // Values already representable in bf16 (and so in f16 at this range): every dtype must round-trip them exactly.
        static Tensor Bf16Exact(Tensor t) => new(t.Shape, t.Data.Select(v => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000)).ToArray());
        var tensors = new Dictionary<string, Tensor>
        {
            ["zeta"] = Bf16Exact(Rand(3, 5)),
            ["alpha.weight"] = Bf16Exact(Rand(2, 1, 4)),
            ["scalar"] = Bf16Exact(Rand()),
            ["empty"] = Rand(0, 7),
            ["big"] = Bf16Exact(Rand(300_000)),  // spans several conversion chunks
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode & <html> \"quotes\"" };
        using var dir = new TempDir();
        var path = dir.File("rt.safetensors");

        SafeTensorsFile.Write(path, tensors, metadata, dtype);
        var back = SafeTensorsFile.Read(path);

        Assert.Equal(["alpha.weight", "big", "empty", "scalar", "zeta"], back.Tensors.Keys);
        AssertSameStateDict(tensors, back.Tensors);
        Assert.Equal(metadata, back.Metadata);
        Assert.Equal(new[] { path }, Directory.GetFiles(dir.Path));  // no temp file left behind
    }

    [Fact]
    public void Header_is_padded_with_spaces_to_eight_bytes()
    {
        using var dir = new TempDir();
        var path = dir.File("pad.safetensors");
        SafeTensorsFile.Write(path, new Dictionary<string, Tensor> { ["a"] = new([3], [1, 2, 3]) });

        var bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = System.Text.Encoding.UTF8.GetString(bytes, 8, n);

        Assert.Equal(0, n % 8);
        Assert.Equal("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}""", header.TrimEnd(' '));
        Assert.Equal(8 + n + 12, bytes.Length);
    }

    [Fact]
    public void Writer_refuses_the_reserved_metadata_name()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<ArgumentException>(() =>
            SafeTensorsFile.Write(dir.File("x.safetensors"), new Dictionary<string, Tensor> { ["__metadata__"] = new([1]) }));
        Assert.Contains("__metadata__", ex.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
