using System.Buffers.Binary;
using System.Text;
using MLNet.MemoryTokens.IO;
using ScottPlot;

namespace MLNet.MemoryTokens.Cli.Plots;

/// <summary>Writes a plot as PNG and SVG beside each other (same stem), each file replaced atomically and marked as ours
/// (a PNG <c>tEXt</c> chunk, an SVG comment), so that a later plot replaces only a plot we drew.</summary>
internal static class PlotFiles
{
    public const int Width = 900, Height = 560;
    const string Marker = "MLNet.MemoryTokens";

    /// <summary>Writes <c>stem.png</c> and <c>stem.svg</c>; returns both paths.</summary>
    public static (string Png, string Svg) Save(Plot plot, string stem)
    {
        string png = stem + ".png", svg = stem + ".svg";
        var bytes = WithSoftwareText(plot.GetImageBytes(Width, Height, ImageFormat.Png));
        AtomicFile.Write(png, s => s.Write(bytes));
        var xml = plot.GetSvgXml(Width, Height);
        AtomicFile.Write(svg, s => s.Write(Encoding.UTF8.GetBytes($"<!-- {Marker} plot -->\n" + xml)));
        return (png, svg);
    }

    /// <summary>Throws an <see cref="OutputRefusedException"/> unless <c>stem.png</c> and <c>stem.svg</c> can be written: absent
    /// or plots of ours, in a folder that accepts a new file. What to call before the work whose result is plotted.</summary>
    public static void EnsureWritable(string stem)
    {
        OwnedOutput.EnsureWritable(stem + ".png", Png, "plot");
        OwnedOutput.EnsureWritable(stem + ".svg", Svg, "plot");
    }

    static readonly FileArtifact Png = new("a PNG plot", path =>
    {
        var data = InputFile.ReadAllBytes(path, 64L << 20, "plot");
        for (int pos = 8; pos + 12 <= data.Length;)
        {
            int length = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(pos)), int.MaxValue);
            if (length > data.Length - pos - 12) return false;
            var type = Encoding.ASCII.GetString(data, pos + 4, 4);
            if (type == "tEXt" && Encoding.Latin1.GetString(data, pos + 8, length) == "Software\0" + Marker) return true;
            if (type == "IDAT") return false;
            pos += 12 + length;
        }
        return false;
    });

    static readonly FileArtifact Svg = new("an SVG plot", path =>
    {
        using var f = InputFile.OpenRead(path, 64L << 20, "plot");
        var head = new byte[64];
        int n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return Encoding.UTF8.GetString(head, 0, n).StartsWith($"<!-- {Marker} plot -->", StringComparison.Ordinal);
    });

    /// <summary>The PNG with a <c>tEXt</c> chunk "Software: MLNet.MemoryTokens" after its header chunk.</summary>
    static byte[] WithSoftwareText(byte[] png)
    {
        const int headerEnd = 8 + 12 + 13;   // signature, IHDR (length, type, 13 bytes of data, CRC)
        var text = Encoding.Latin1.GetBytes("tEXtSoftware\0" + Marker);
        var chunk = new byte[4 + text.Length + 4];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)(text.Length - 4));
        text.CopyTo(chunk, 4);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(4 + text.Length), Crc32(text));
        return [.. png.AsSpan(0, headerEnd), .. chunk, .. png.AsSpan(headerEnd)];
    }

    static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }

    /// <summary>The stem of a <c>--plot</c> path: a given .png/.svg extension is dropped (both files are written).</summary>
    public static string StemOf(string path)
    {
        string ext = Path.GetExtension(path);
        return ext.Equals(".png", StringComparison.OrdinalIgnoreCase) || ext.Equals(".svg", StringComparison.OrdinalIgnoreCase)
            ? path[..^ext.Length] : path;
    }
}
