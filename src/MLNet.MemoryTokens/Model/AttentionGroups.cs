namespace MLNet.MemoryTokens.Model;

/// <summary>Who attends to what inside one block: a run of query rows, the stream rows they read, and the memory sets they read.</summary>
/// <remarks>Plain self-attention is one group (0, N, [(0, N)], []). Memory tokens: (0, N, [(0, N)], [0]). The masked variant keeps
/// the original rows to themselves, (0, N, [(0, N)], []), and adds per task t a class-token row that reads the originals,
/// itself and its memory: (N+t, 1, [(0, N), (N+t, 1)], [t]). VQT query rows read only the originals: (N, T, [(0, N)], []).</remarks>
public sealed record AttentionGroup(int QueryStart, int Queries, (int Start, int Rows)[] StreamKeys, int[] Memories, bool ReadsExternal = false)
{
    /// <summary>Plain self-attention over the first <paramref name="rows"/> rows: every row reads every row.</summary>
    public static AttentionGroup SelfAttention(int rows) => new(0, rows, [(0, rows)], []);
}

/// <summary>The rows of each sample that anything reads after a block (the last block: the rows the heads read): runs of rows,
/// ascending and disjoint. Every row still gives keys and values; only live rows go through projection and MLP.</summary>
public sealed record LiveRows(params (int Start, int Count)[] Ranges)
{
    /// <summary>Live rows per sample.</summary>
    public int Count => Ranges.Sum(r => r.Count);

    public bool Holds(AttentionGroup g) => Ranges.Any(r => g.QueryStart >= r.Start && g.QueryStart + g.Queries <= r.Start + r.Count);

    /// <summary>The groups cut down to their live query rows (a group's rows outside every live run are dropped, and a group
    /// with none left goes): what the last block runs, since rows no head reads need no output there.</summary>
    public AttentionGroup[] Restrict(IReadOnlyList<AttentionGroup> groups)
    {
        var kept = new List<AttentionGroup>();
        foreach (var g in groups)
            foreach (var (start, count) in Ranges)
            {
                int from = Math.Max(g.QueryStart, start), to = Math.Min(g.QueryStart + g.Queries, start + count);
                if (from < to) kept.Add(from == g.QueryStart && to - from == g.Queries ? g : g with { QueryStart = from, Queries = to - from });
            }
        return kept.ToArray();
    }

    internal void Validate(int seqRows)
    {
        int end = 0;
        foreach (var (start, count) in Ranges)
        {
            if (start < end || count < 1 || start + count > seqRows) throw new ArgumentException($"Live rows must be ascending, disjoint runs within the {seqRows} rows of a sample.");
            end = start + count;
        }
        if (Ranges.Length == 0) throw new ArgumentException("At least one row must be live.");
    }

    /// <summary>[B, S, D] → [B, Count, D]: each sample's live rows, in order.</summary>
    internal void Gather(float[] full, float[] live, int batch, int seqRows, int d)
    {
        int at = 0;
        for (int b = 0; b < batch; b++)
            foreach (var (start, count) in Ranges)
            {
                Array.Copy(full, ((long)b * seqRows + start) * d, live, (long)at * d, (long)count * d);
                at += count;
            }
    }

    /// <summary>[B, Count, D] → the live rows of [B, S, D] (the other rows untouched).</summary>
    internal void Scatter(float[] live, float[] full, int batch, int seqRows, int d)
    {
        int at = 0;
        for (int b = 0; b < batch; b++)
            foreach (var (start, count) in Ranges)
            {
                Array.Copy(live, (long)at * d, full, ((long)b * seqRows + start) * d, (long)count * d);
                at += count;
            }
    }
}
