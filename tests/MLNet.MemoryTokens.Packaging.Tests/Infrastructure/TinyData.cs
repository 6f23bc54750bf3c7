using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>Tiny inputs that make every packaged path run in seconds: a random ViT (16×16 images, 4×4 patches, width 32,
/// depth 2) as a timm-named safetensors checkpoint, and small labelled image folders (one subfolder per class).</summary>
public static class TinyData
{
    public const int Size = 16;
    public static readonly VitConfig Config = new() { ImageSize = Size, PatchSize = 4, Dim = 32, Depth = 2, Heads = 2, MlpDim = 64, NumClasses = 0 };

    /// <summary>Writes the random ViT (with an ImageNet-like head of <paramref name="classes"/> classes when &gt; 0).</summary>
    public static string WriteCheckpoint(string folder, int seed = 1, int classes = 0)
    {
        var vit = VisionTransformer.CreateRandom(Config with { NumClasses = classes }, seed);
        var path = Path.Combine(folder, $"tiny_vit_{seed}_{classes}.safetensors");
        SafeTensorsFile.Write(path, vit.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value));
        return path;
    }

    /// <summary>Image <paramref name="index"/>: dominated by colour channel index % 3, seeded noise, and a bright square in
    /// the left half (even index / 3) or the right half (odd) — two labellings of the same pictures.</summary>
    public static RgbImage Image(int index)
    {
        var rng = new Random(1000 + index);
        int colour = index % 3;
        bool left = index / 3 % 2 == 0;
        var px = new byte[Size * Size * 3];
        for (int i = 0; i < Size * Size; i++)
            for (int c = 0; c < 3; c++)
                px[i * 3 + c] = (byte)(c == colour ? rng.Next(140, 256) : rng.Next(0, 110));
        int sx = left ? rng.Next(0, Size / 2 - 4) : rng.Next(Size / 2, Size - 4), sy = rng.Next(0, Size - 4);
        for (int y = sy; y < sy + 4; y++)
            for (int x = sx; x < sx + 4; x++)
                for (int c = 0; c < 3; c++) px[(y * Size + x) * 3 + c] = 255;
        return new RgbImage(Size, Size, px);
    }

    public static readonly string[] Colours = ["red", "green", "blue"];
    public static readonly string[] Sides = ["left", "right"];
    public static string ColourOf(int index) => Colours[index % 3];
    public static string SideOf(int index) => Sides[index / 3 % 2];

    /// <summary>Images <paramref name="first"/>..first+count−1 as 24-bit BMP files (which both the engine and ML.NET's
    /// LoadImages decode) in one subfolder per class of <paramref name="labelOf"/>.</summary>
    public static string WriteFolder(string folder, int first, int count, Func<int, string> labelOf)
    {
        for (int i = first; i < first + count; i++)
        {
            var dir = Directory.CreateDirectory(Path.Combine(folder, labelOf(i))).FullName;
            WriteBmp(Image(i), Path.Combine(dir, $"img{i:D4}.bmp"));
        }
        return folder;
    }

    /// <summary>Uncompressed 24-bit BMP, bottom-up rows of BGR (widths here are multiples of 4, so no padding).</summary>
    public static void WriteBmp(RgbImage image, string path)
    {
        int row = image.Width * 3, size = 54 + row * image.Height;
        using var w = new BinaryWriter(File.Create(path));
        w.Write((byte)'B'); w.Write((byte)'M'); w.Write(size); w.Write(0); w.Write(54);
        w.Write(40); w.Write(image.Width); w.Write(image.Height); w.Write((short)1); w.Write((short)24); w.Write(0); w.Write(row * image.Height);
        w.Write(2835); w.Write(2835); w.Write(0); w.Write(0);
        for (int y = image.Height - 1; y >= 0; y--)
            for (int x = 0; x < image.Width; x++)
            {
                int p = (y * image.Width + x) * 3;
                w.Write(image.Pixels[p + 2]); w.Write(image.Pixels[p + 1]); w.Write(image.Pixels[p]);
            }
    }
}
