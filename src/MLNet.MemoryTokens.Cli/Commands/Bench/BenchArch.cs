using System.CommandLine;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary>The model sizes the benchmarks run (random weights of timm's shapes, patch 16: the compute of the real checkpoints),
/// and the arithmetic each forward does, to state a figure as a fraction of the GEMM peak.</summary>
internal static class BenchArch
{
    public static readonly string[] Names = ["vit_tiny", "vit_small", "vit_base"];

    public static Option<string> Option()
    {
        var o = new Option<string>("--arch") { Description = "Model size with random weights (vit_tiny, vit_small, vit_base; patch 16); ignored with --model.", DefaultValueFactory = _ => "vit_tiny" };
        o.AcceptOnlyFromAmong(Names);
        return o;
    }

    /// <summary>The architecture of <paramref name="arch"/> from the pretrained registry (timm's shapes), at <paramref name="imageSize"/>.</summary>
    public static VitConfig Config(string arch, int imageSize, int classes = 1000) =>
        (PretrainedModels.Find($"{arch}_patch16_224") ?? throw new ArgumentException($"Unknown --arch '{arch}'; use one of {string.Join(", ", Names)}."))
        .Architecture with { ImageSize = imageSize, NumClasses = classes };

    /// <summary>Floating-point operations (2 per multiply-add) of one image's forward: patch embedding, per block the four linear
    /// layers and the two attention products, the head. LayerNorm, softmax and GELU are not counted (as GEMM-bound figures do).</summary>
    public static double ForwardFlops(VitConfig c)
    {
        double n = c.NumTokens, d = c.Dim, f = c.MlpDim;
        double block = 2 * n * d * (3 * d + d + 2 * f) + 2 * 2 * n * n * d;
        return c.Depth * block + 2.0 * c.NumPatches * d * c.InChannels * c.PatchSize * c.PatchSize + 2.0 * d * c.NumClasses;
    }

    /// <summary>(name, M, N, K) of the four linear layers of a block over a batch: y = x·Wᵀ with M = batch × tokens.</summary>
    public static (string Name, int M, int N, int K)[] LinearShapes(VitConfig c, int batch)
    {
        int m = batch * c.NumTokens;
        return [("qkv", m, 3 * c.Dim, c.Dim), ("proj", m, c.Dim, c.Dim), ("fc1", m, c.MlpDim, c.Dim), ("fc2", m, c.Dim, c.MlpDim)];
    }

    public static string Describe(VitConfig c) => $"D={c.Dim} depth={c.Depth} heads={c.Heads}";
}
