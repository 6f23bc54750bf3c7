using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

/// <summary>What a memory-token model is built with: m tokens per layer; the attention-masked variant; whether the class token
/// trains (a masked task always has its own); for model extension, the frozen masked tasks it reads.</summary>
/// <param name="Tokens">m, memory tokens per layer (at least 1).</param>
public sealed record MemoryTokenOptions(int Tokens, bool Masked = false, bool TrainClassToken = true)
{
    /// <summary>Model extension (masked only): the frozen masked tasks this one reads, in the order they were trained.</summary>
    public IReadOnlyList<MemoryTokenVit> Extends { get; init; } = [];

    internal void Validate(VisionTransformer backbone)
    {
        if (Tokens < 1) throw new ArgumentOutOfRangeException(nameof(Tokens), Tokens, "Memory tuning needs at least one token per layer.");
        if (Extends.Count > 0 && !Masked) throw new ArgumentException("Model extension (reading earlier tasks' tokens) applies to the attention-masked variant.");
        if (Extends.Any(e => !e.Masked || e.Backbone != backbone)) throw new ArgumentException("A task extends masked memory tasks on the same backbone only.");
    }
}
