namespace MLNet.MemoryTokens.Kernels;

/// <summary>Per-thread scratch arrays that kernels reuse call after call (packing panels, score tiles). A kernel step makes
/// thousands of small calls; renting from the shared pool missed often enough to keep the GC busy and stall every thread.</summary>
internal static class Scratch
{
    /// <summary>Distinct uses that can be alive at once on one thread (a GEMM inside an attention task uses three).</summary>
    public enum Slot { GemmPackedB, GemmPackedA, AttentionScores, ExternalKeyValues, Count }

    [ThreadStatic] static float[]?[]? _arrays;

    /// <summary>An array of at least <paramref name="length"/> floats for this thread and slot (contents undefined), pinned so
    /// callers may keep raw pointers into it while they run.</summary>
    public static float[] Get(Slot slot, int length)
    {
        var arrays = _arrays ??= new float[]?[(int)Slot.Count];
        var a = arrays[(int)slot];
        if (a is null || a.Length < length)
            arrays[(int)slot] = a = GC.AllocateUninitializedArray<float>(Math.Max(length, (a?.Length ?? 0) * 2), pinned: true);
        return a;
    }
}
