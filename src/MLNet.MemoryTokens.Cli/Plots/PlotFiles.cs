using MLNet.MemoryTokens.IO;
using ScottPlot;

namespace MLNet.MemoryTokens.Cli.Plots;

/// <summary>Writes a plot as PNG and SVG beside each other (same stem), each file replaced atomically.</summary>
internal static class PlotFiles
{
    public const int Width = 900, Height = 560;

    /// <summary>Writes <c>stem.png</c> and <c>stem.svg</c>; returns both paths.</summary>
    public static (string Png, string Svg) Save(Plot plot, string stem)
    {
        string png = stem + ".png", svg = stem + ".svg";
        var bytes = plot.GetImageBytes(Width, Height, ImageFormat.Png);
        AtomicFile.Write(png, s => s.Write(bytes));
        var xml = plot.GetSvgXml(Width, Height);
        AtomicFile.Write(svg, s => s.Write(System.Text.Encoding.UTF8.GetBytes(xml)));
        return (png, svg);
    }

    /// <summary>The stem of a <c>--plot</c> path: a given .png/.svg extension is dropped (both files are written).</summary>
    public static string StemOf(string path)
    {
        string ext = Path.GetExtension(path);
        return ext.Equals(".png", StringComparison.OrdinalIgnoreCase) || ext.Equals(".svg", StringComparison.OrdinalIgnoreCase)
            ? path[..^ext.Length] : path;
    }
}
