using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Tests;

/// <summary>Up to three classes told apart by colour: red, green or blue 16×16 squares with noise (what a tiny ViT learns in a
/// few steps; one data set for the training, family and safety tests).</summary>
public sealed class ColourSquares(int count, int seed, int classes = 3) : IImageDataset
{
    public int Count => count;
    public IReadOnlyList<string> ClassNames { get; } = new[] { "red", "green", "blue" }.Take(classes).ToArray();
    public int LabelOf(int index) => index % classes;
    public string SourceOf(int index) => $"colour#{index}";
    public RgbImage Load(int index)
    {
        var rng = new Random(seed * 7919 + index);
        var px = new byte[16 * 16 * 3];
        for (int i = 0; i < 256; i++)
            for (int c = 0; c < 3; c++)
                px[i * 3 + c] = (byte)Math.Clamp((c == LabelOf(index) ? 180 : 60) + rng.Next(-50, 50), 0, 255);
        return new RgbImage(16, 16, px);
    }
}
