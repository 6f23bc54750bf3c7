using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Tiny random ViTs (16×16 images, 4×4 patches, width 32, depth 2): whole pipelines train in well under a second.</summary>
public static class TinyVit
{
    public const int Size = 16;
    public static readonly VitConfig Config = new() { ImageSize = Size, PatchSize = 4, Dim = 32, Depth = 2, Heads = 2, MlpDim = 64, NumClasses = 0 };

    /// <summary>A random backbone; with <paramref name="classes"/> &gt; 0 it keeps a classification head of that size.</summary>
    public static Backbone Create(int seed = 1, int classes = 0)
    {
        var vit = VisionTransformer.CreateRandom(Config with { NumClasses = classes }, seed);
        return new Backbone(vit, new PreprocessConfig { InputSize = Size }, $"random-{seed}", Backbone.ComputeFingerprint(vit.Parameters));
    }

    /// <summary>The same random weights as a timm-named safetensors checkpoint, for path-based loading.</summary>
    public static string WriteCheckpoint(string folder, int seed = 1, int classes = 0)
    {
        var vit = VisionTransformer.CreateRandom(Config with { NumClasses = classes }, seed);
        var path = Path.Combine(folder, $"tiny_vit_{seed}.safetensors");
        SafeTensorsFile.Write(path, vit.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value));
        return path;
    }
}
