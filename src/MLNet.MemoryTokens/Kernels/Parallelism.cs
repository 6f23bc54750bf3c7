namespace MLNet.MemoryTokens.Kernels;

/// <summary>How many threads the kernels use, and the one parallel loop they all go through.</summary>
public static class Parallelism
{
    static int _threads = ParseThreads();
    static ParallelOptions _options = new() { MaxDegreeOfParallelism = _threads };

    /// <summary>Worker threads for kernels (default: processor count; env MMT_THREADS overrides).</summary>
    public static int Threads
    {
        get => _threads;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "Threads must be at least 1.");
            _threads = value;
            _options = new ParallelOptions { MaxDegreeOfParallelism = value };
        }
    }

    static int ParseThreads() =>
        int.TryParse(Environment.GetEnvironmentVariable("MMT_THREADS"), out var t) && t >= 1 ? t : Environment.ProcessorCount;

    /// <summary>Runs body(i) for i in [from, to) on up to <see cref="Threads"/> threads; inline when there is one job or one thread.</summary>
    public static void For(int from, int to, Action<int> body)
    {
        int count = to - from;
        if (count <= 0) return;
        if (count == 1 || _threads == 1) { for (int i = from; i < to; i++) body(i); return; }
        Parallel.For(from, to, _options, body);
    }

    /// <summary>Splits [0, count) into contiguous chunks, one call per chunk, so per-item overhead stays off small items.</summary>
    public static void ForChunks(int count, int minChunk, Action<int, int> body)
    {
        if (count <= 0) return;
        int chunks = Math.Clamp(count / Math.Max(1, minChunk), 1, _threads * 4);
        if (chunks == 1 || _threads == 1) { body(0, count); return; }
        int size = (count + chunks - 1) / chunks;
        For(0, chunks, c =>
        {
            int start = c * size, end = Math.Min(count, start + size);
            if (start < end) body(start, end);
        });
    }
}
