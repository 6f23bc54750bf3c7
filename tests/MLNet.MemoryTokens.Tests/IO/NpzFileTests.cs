using System.IO.Compression;
using System.Text;
using MLNet.MemoryTokens.IO;
using Xunit;
using static MLNet.MemoryTokens.Tests.IO.CheckpointTestSupport;

namespace MLNet.MemoryTokens.Tests.IO;

public class NpzFileTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Theory]
    [InlineData("f8")]          // float64, stored
    [InlineData("fortran")]     // float32, fortran_order True, rank 3
    [InlineData("fortran64")]   // float64, fortran_order True, rank 2
    public void Numpy_arrays_convert_exactly_to_row_major_f32(string key)
    {
        var z = NpzFile.Read(Fixture("npy_variants.npz"));
        AssertBitEqual(z[key + "__expected"], z[key], key);
    }

    [Fact]
    public void Header_versions_dtypes_scalars_and_empty_arrays_read()
    {
        var z = NpzFile.Read(Fixture("npy_variants.npz"));

        AssertBitEqual(z["v2"], z["v3"], "v3");  // same array written with .npy header versions 2.0 and 3.0
        Assert.Equal([5], z["v2"].Shape);
        Assert.Equal([1f, -0.5f, 65504f, (float)(Half)6e-5f], z["f2"].Data);
        Assert.Equal([-1f, 0f, 123456f], z["i4"].Data);
        Assert.Equal([(float)(-(1L << 40) - 1), 5f], z["i8"].Data);
        Assert.Empty(z["scalar"].Shape);
        Assert.Equal([1.5f], z["scalar"].Data);
        Assert.Equal([0, 3], z["empty"].Shape);
    }

    [Fact]
    public void Stored_and_deflated_savez_archives_agree()
    {
        var stored = NpzFile.Read(Fixture("vit_tiny_bigvision.npz"));
        var deflated = NpzFile.Read(Fixture("vit_tiny_bigvision_compressed.npz"));

        Assert.Equal(stored.Count, deflated.Count);
        foreach (var (key, t) in stored) AssertBitEqual(t, deflated["opt/target/" + key], key);
        Assert.Equal([4, 4, 3, 8], stored["embedding/kernel"].Shape);
    }

    int archives;

    string Npz(params (string Name, byte[] Bytes)[] entries)
    {
        var path = dir.File($"bad{++archives}.npz");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var (name, bytes) in entries)
        {
            using var s = zip.CreateEntry(name).Open();
            s.Write(bytes);
        }
        return path;
    }

    /// <summary>A version-1 .npy with the given header dict and data.</summary>
    static byte[] Npy(string dict, byte[] data)
    {
        string header = dict.PadRight(117) + "\n";  // 10-byte prefix + 118 = 128, aligned like numpy does
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.AddRange([1, 0, (byte)header.Length, 0]);
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        bytes.AddRange(data);
        return [.. bytes];
    }

    CheckpointException ReadFails(string path, string entry)
    {
        var ex = Assert.Throws<CheckpointException>(() => NpzFile.Read(path));
        Assert.Contains(Path.GetFileName(path), ex.Message);
        Assert.Contains($"'{entry}'", ex.Message);
        Assert.Equal(entry, ex.Key);
        return ex;
    }

    [Fact]
    public void Hand_written_npy_reads()
    {
        var path = Npz(("w.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", FloatBytes(4))));
        Assert.Equal([0f, 1f, 2f, 3f], NpzFile.Read(path)["w"].Data);
    }

    [Fact]
    public void Garbage_entry_is_named()
    {
        var path = Npz(("good.npy", Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", FloatBytes(1))),
                       ("blocks/bad.npy", "this is not an array"u8.ToArray()));
        var ex = ReadFails(path, "blocks/bad.npy");
        Assert.Contains("magic", ex.Message);
    }

    [Theory]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", "big-endian")]
    [InlineData("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "dtype '<c8' is not supported")]
    [InlineData("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2,), }", "structured")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", "needs 20 data bytes but the entry holds 16")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", "not a tuple of non-negative integers")]
    [InlineData("{'descr': '<f4', 'shape': (4,), }", "lacks 'fortran_order'")]
    public void Unsupported_or_inconsistent_npy_is_refused_with_the_entry(string dict, string expected)
    {
        var ex = ReadFails(Npz(("w.npy", Npy(dict, FloatBytes(4)))), "w.npy");
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Npy_header_running_past_the_entry_is_refused()
    {
        var bytes = Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", [])[..40];
        var ex = ReadFails(Npz(("w.npy", bytes)), "w.npy");
        Assert.Contains("runs past the end", ex.Message);
    }

    [Fact]
    public void Non_npy_entries_and_pytorch_pickles_are_refused_by_name()
    {
        Assert.Contains("not a .npy array", ReadFails(Npz(("notes.txt", [1, 2])), "notes.txt").Message);
        Assert.Contains("PyTorch", ReadFails(Npz(("archive/data.pkl", [0x80, 2])), "archive/data.pkl").Message);
    }

    [Fact]
    public void A_file_that_is_not_a_zip_is_refused_with_its_name()
    {
        var path = dir.Write("junk.npz", [(byte)'P', (byte)'K', 3, 4, 9, 9, 9, 9]);
        var ex = Assert.Throws<CheckpointException>(() => NpzFile.Read(path));
        Assert.Contains("junk.npz", ex.Message);
        Assert.Contains("not a readable .npz", ex.Message);
    }

    [Theory]
    [InlineData("npy_variants.npz")]
    [InlineData("vit_tiny_bigvision_compressed.npz")]
    public void Reader_never_lets_a_raw_exception_escape_on_random_damage(string fixture)
    {
        var good = File.ReadAllBytes(Fixture(fixture));
        var rng = new Random(7);
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])good.Clone();
            for (int k = 0; k < 3; k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            var path = dir.Write("fuzz.npz", bytes);
            try { NpzFile.Read(path); }
            catch (CheckpointException ex) { Assert.Contains("fuzz.npz", ex.Message); }
        }
    }

    [Fact]
    public void Fortran_order_transpose_matches_index_arithmetic()
    {
        int[] shape = [2, 3, 4];
        var fortran = Enumerable.Range(0, 24).Select(i => (float)i).ToArray();  // value = i + 2j + 6k at (i, j, k)
        var rowMajor = MLNet.MemoryTokens.IO.NpyArray.FortranToRowMajor(fortran, shape);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 4; k++)
                    Assert.Equal(i + 2 * j + 6 * k, rowMajor[(i * 3 + j) * 4 + k]);
    }
}
