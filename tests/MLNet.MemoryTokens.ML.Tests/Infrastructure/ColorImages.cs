using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>A tiny separable image problem: class k's images are dominated by colour channel k, with seeded noise and a
/// random bright square. The same images come as MLImage rows, image files, pixel vectors and an engine dataset.</summary>
public static class ColorImages
{
    public static readonly string[] Classes = ["red", "green", "blue"];

    public static string LabelOf(int index) => Classes[index % Classes.Length];

    public static RgbImage Image(int index, int width = TinyVit.Size, int height = TinyVit.Size)
    {
        var rng = new Random(1000 + index);
        int cls = index % Classes.Length;
        var px = new byte[width * height * 3];
        for (int i = 0; i < width * height; i++)
            for (int c = 0; c < 3; c++)
                px[i * 3 + c] = (byte)(c == cls ? rng.Next(140, 256) : rng.Next(0, 110));
        int sx = rng.Next(0, width / 2), sy = rng.Next(0, height / 2);
        for (int y = sy; y < sy + height / 4; y++)
            for (int x = sx; x < sx + width / 4; x++)
                for (int c = 0; c < 3; c++) px[(y * width + x) * 3 + c] = 255;
        return new RgbImage(width, height, px);
    }

    public static MLImage ToMLImage(RgbImage image)
    {
        var bgra = new byte[image.Width * image.Height * 4];
        for (int i = 0; i < image.Width * image.Height; i++)
        {
            bgra[i * 4] = image.Pixels[i * 3 + 2];
            bgra[i * 4 + 1] = image.Pixels[i * 3 + 1];
            bgra[i * 4 + 2] = image.Pixels[i * 3];
            bgra[i * 4 + 3] = 255;
        }
        return MLImage.CreateFromPixels(image.Width, image.Height, MLPixelFormat.Bgra32, bgra);
    }

    /// <summary>Planar RGB, 0–255: what ExtractPixels gives with its defaults.</summary>
    public static float[] ToPlanar(RgbImage image)
    {
        int plane = image.Width * image.Height;
        var v = new float[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) v[c * plane + i] = image.Pixels[i * 3 + c];
        return v;
    }

    /// <summary>Binary PPM (P6), which the engine's decoder reads.</summary>
    public static void WritePpm(RgbImage image, string path)
    {
        using var f = File.Create(path);
        var header = System.Text.Encoding.ASCII.GetBytes($"P6\n{image.Width} {image.Height}\n255\n");
        f.Write(header);
        f.Write(image.Pixels);
    }

    public sealed class ImageRow
    {
        [ImageType(TinyVit.Size, TinyVit.Size)] public MLImage? Image { get; set; }
        public string Label { get; set; } = "";
    }

    /// <summary>Larger, non-square images (24 high, 20 wide) that the components resize themselves.</summary>
    public sealed class LargeImageRow
    {
        [ImageType(24, 20)] public MLImage? Image { get; set; }
        public string Label { get; set; } = "";
    }

    public sealed class PixelRow
    {
        [VectorType(3 * TinyVit.Size * TinyVit.Size)] public float[] Image { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public sealed class PathRow
    {
        public string Image { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
        public string PredictedLabel { get; set; } = "";
    }

    public static IEnumerable<int> Range(int start, int count) => Enumerable.Range(start, count);

    public static List<ImageRow> ImageRows(IEnumerable<int> indices) =>
        indices.Select(i => new ImageRow { Image = ToMLImage(Image(i)), Label = LabelOf(i) }).ToList();

    public static List<LargeImageRow> LargeImageRows(IEnumerable<int> indices) =>
        indices.Select(i => new LargeImageRow { Image = ToMLImage(Image(i, 20, 24)), Label = LabelOf(i) }).ToList();

    public static List<PixelRow> PixelRows(IEnumerable<int> indices) =>
        indices.Select(i => new PixelRow { Image = ToPlanar(Image(i)), Label = LabelOf(i) }).ToList();

    /// <summary>Writes the images as PPM files into <paramref name="folder"/>; rows name them relative to it (or absolute).</summary>
    public static List<PathRow> PathRows(IEnumerable<int> indices, string folder, bool absolute = false, int width = TinyVit.Size, int height = TinyVit.Size)
    {
        return indices.Select(i =>
        {
            var name = $"img{i}.ppm";
            WritePpm(Image(i, width, height), Path.Combine(folder, name));
            return new PathRow { Image = absolute ? Path.Combine(folder, name) : name, Label = LabelOf(i) };
        }).ToList();
    }

    /// <summary>The class order as key data, so key k is class k − 1 (as in the engine dataset).</summary>
    public static IDataView KeyData(MLContext ml) => ml.Data.LoadFromEnumerable(Classes.Select(c => new LabelRow { Label = c }));

    public sealed class LabelRow { public string Label { get; set; } = ""; }

    /// <summary>Label → key in class order (the same class indices as <see cref="EngineDataset"/>).</summary>
    public static IEstimator<ITransformer> MapLabel(MLContext ml) => ml.Transforms.Conversion.MapValueToKey("Label", keyData: KeyData(ml));

    /// <summary>The same images through the engine's own dataset interface.</summary>
    public sealed class EngineDataset(IReadOnlyList<int> indices, int width = TinyVit.Size, int height = TinyVit.Size) : IImageDataset
    {
        public int Count => indices.Count;
        public IReadOnlyList<string> ClassNames => Classes;
        public int LabelOf(int index) => indices[index] % Classes.Length;
        public string SourceOf(int index) => $"color#{indices[index]}";
        public RgbImage Load(int index) => Image(indices[index], width, height);
    }
}
