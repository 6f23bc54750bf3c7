using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>A new classification head, initialised as timm's <c>reset_classifier</c>: trunc-normal(0.02)-like weights, zero bias.</summary>
public static class HeadInit
{
    /// <summary>Weight [C, K] (values N(0, 0.02) clamped to ±0.04, drawn from <paramref name="rng"/> in order) and bias [C] of zeros.</summary>
    public static (Tensor Weight, Tensor Bias) Create(int classes, int inputs, Random rng)
    {
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "A task needs at least one class.");
        var weight = new Tensor([classes, inputs]);
        for (int i = 0; i < weight.Length; i++) weight.Data[i] = (float)Math.Clamp(VisionTransformer.Gaussian(rng) * 0.02, -0.04, 0.04);
        return (weight, new Tensor([classes]));
    }
}
