namespace MLNet.MemoryTokens.Data;

/// <summary>Derives seeds from (seed, a, b) with a fixed mix, the same in every process and .NET version (unlike HashCode).</summary>
public static class Seeds
{
    /// <summary>SplitMix64's finaliser over the three values, folded to a non-negative int.</summary>
    public static int Mix(int seed, int a, int b)
    {
        ulong z = unchecked((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + (ulong)(uint)a * 0xC2B2AE3D27D4EB4FUL + (ulong)(uint)b * 0x165667B19E3779F9UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
