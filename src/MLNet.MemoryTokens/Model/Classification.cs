namespace MLNet.MemoryTokens.Model;

/// <summary>Turning logits into probabilities and ranked classes.</summary>
public static class Classification
{
    /// <summary>Softmax of one row of logits (max-subtracted), as a new array.</summary>
    public static float[] Softmax(ReadOnlySpan<float> logits)
    {
        var p = new float[logits.Length];
        Kernels.Softmax.RowForward(p, logits, 1f);
        return p;
    }

    /// <summary>Indices of the k largest scores, largest first (ties: lower index first).</summary>
    public static int[] TopK(ReadOnlySpan<float> scores, int k)
    {
        k = Math.Min(k, scores.Length);
        var idx = new int[scores.Length];
        for (int i = 0; i < idx.Length; i++) idx[i] = i;
        var s = scores.ToArray();
        Array.Sort(idx, (a, b) => s[b] != s[a] ? s[b].CompareTo(s[a]) : a.CompareTo(b));
        return idx[..k];
    }
}
