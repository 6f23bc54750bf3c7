namespace MLNet.MemoryTokens.Kernels;

/// <summary>Per-thread scratch arrays that kernels reuse call after call (packing panels, score tiles). A kernel step makes
/// thousands of small calls; renting from the shared pool missed often enough to keep the GC busy and stall every thread.</summary>
internal static class Scratch
{
    /// <summary>Distinct uses that can be alive at once on one thread (a GEMM inside an attention task uses three).</summary>
    public enum Slot { GemmPackedB, GemmPackedA, AttentionScores, ExternalKeyValues, QuantizedActivations, Count }

    [ThreadStatic] static float[]?[]? _arrays;

    /// <summary>An array of at least <paramref name="length"/> floats for this thread and slot (contents undefined), pinned so
    /// callers may keep raw pointers into it while they run.</summary>
    /// <remarks>Callers compute <paramref name="length"/> in checked 64-bit arithmetic; a length beyond
    /// <see cref="Limits.MaxTensorElements"/> (or a negative one) is refused here, never wrapped into a smaller array that
    /// pointer code would then run past.</remarks>
    public static float[] Get(Slot slot, long length)
    {
        if ((ulong)length > (ulong)Limits.MaxTensorElements)
            throw new LimitExceededException($"A kernel's scratch buffer ({slot}) would need {length:N0} floats, beyond the limit of {Limits.MaxTensorElements:N0}.");
        var arrays = _arrays ??= new float[]?[(int)Slot.Count];
        var a = arrays[(int)slot];
        if (a is null || a.Length < length)
            arrays[(int)slot] = a = GC.AllocateUninitializedArray<float>((int)Math.Min(Limits.MaxTensorElements, Math.Max(length, (a?.Length ?? 0) * 2L)), pinned: true);
        return a;
    }
}
