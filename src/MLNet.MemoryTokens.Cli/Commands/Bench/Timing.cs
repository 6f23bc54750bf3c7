using System.Diagnostics;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary>Timing and memory figures measured the same way on our side as reference/bench_torch.py does on PyTorch's.</summary>
internal static class Timing
{
    /// <summary>Median seconds of repeated calls, running for at least <paramref name="minSeconds"/> and 3 calls, after a warm-up of
    /// at least 2 calls and 2 seconds (the JIT's tiered compilation settles on optimised code during the first calls).</summary>
    public static double Median(Action action, double minSeconds) => Measure(action, minSeconds).Seconds;

    /// <summary>As <see cref="Median"/>, with the median CPU time (user + system, all threads) of the same calls: on a shared
    /// machine, wall-clock time counts the other processes' turns and CPU time does not.</summary>
    public static (double Seconds, double CpuSeconds) Measure(Action action, double minSeconds)
    {
        ResetPeakRss();   // the peak figure is the work's own (set-up such as filling a cache does not count)
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.Elapsed.TotalSeconds < 2; i++) action();
        var (times, cpus) = (new List<double>(), new List<double>());
        var total = Stopwatch.StartNew();
        do
        {
            double cpu = CpuSeconds();
            var sw = Stopwatch.StartNew();
            action();
            times.Add(sw.Elapsed.TotalSeconds);
            cpus.Add(CpuSeconds() - cpu);
        } while (total.Elapsed.TotalSeconds < minSeconds || times.Count < 3);
        return (MedianOf(times), MedianOf(cpus));
    }

    /// <summary>CPU seconds this process has run (user + system, every thread).</summary>
    public static double CpuSeconds()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>Times <paramref name="a"/> and <paramref name="b"/> in turn (a, b, a, b …) after a warm-up of both: the median
    /// of each and the median of the per-pair ratios b/a.</summary>
    public static (double A, double B, double Ratio) Paired(Action a, Action b, double minSeconds)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.Elapsed.TotalSeconds < 2; i++) { a(); b(); }
        var (ta, tb, ratios) = (new List<double>(), new List<double>(), new List<double>());
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            a();
            double x = sw.Elapsed.TotalSeconds;
            sw.Restart();
            b();
            double y = sw.Elapsed.TotalSeconds;
            ta.Add(x); tb.Add(y); ratios.Add(y / x);
        } while (total.Elapsed.TotalSeconds < 2 * minSeconds || ratios.Count < 5);
        return (MedianOf(ta), MedianOf(tb), MedianOf(ratios));
    }

    /// <summary>The middle value (the upper one of an even count).</summary>
    public static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>Resets the kernel's peak-RSS counter (VmHWM) of this process (Linux: writing 5 to /proc/self/clear_refs).</summary>
    public static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Peak resident set of this process (VmHWM) since start or the last reset, MB.</summary>
    public static double PeakRssMb()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:")) return double.Parse(line[6..].Trim().Split(' ')[0]) / 1024.0;
        }
        catch (IOException) { }
        return Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
    }
}
