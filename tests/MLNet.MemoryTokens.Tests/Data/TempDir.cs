using System.IO.Compression;
using System.Text;

namespace MLNet.MemoryTokens.Tests.Data;

/// <summary>A scratch folder for one test, deleted on dispose, with writers for the small files the dataset tests need.</summary>
public sealed class TempDir : IDisposable
{
    public string Root { get; } = Directory.CreateDirectory(
        Path.Combine(Path.GetTempPath(), "mmt-data-" + Guid.NewGuid().ToString("N"))).FullName;

    public string PathOf(string relative) => Path.Combine(Root, relative);

    public string Write(string relative, byte[] bytes)
    {
        string path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public string WriteText(string relative, string text) => Write(relative, Encoding.UTF8.GetBytes(text));

    public string Folder(string relative) => Directory.CreateDirectory(PathOf(relative)).FullName;

    /// <summary>A 1×1 binary PPM of one colour; the colour tells the files apart after loading.</summary>
    public static byte[] Ppm(byte r, byte g = 0, byte b = 0) => [.. "P6\n1 1\n255\n"u8, r, g, b];

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Optimal)) gz.Write(data);
        return output.ToArray();
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { } // a leftover temp folder must not fail the test that made it
    }
}
