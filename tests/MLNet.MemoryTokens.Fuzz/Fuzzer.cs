using System.Diagnostics;

namespace MLNet.MemoryTokens.Fuzz;

/// <summary>How long and on what to fuzz.</summary>
public sealed record FuzzOptions
{
    /// <summary>Seeds the mutations: the same seed, targets and counts give the same inputs.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Inputs per target (the CI run); ignored when <see cref="Duration"/> is set.</summary>
    public int InputsPerTarget { get; init; } = 1000;
    /// <summary>Total wall time, shared equally by the targets (the long run).</summary>
    public TimeSpan? Duration { get; init; }
    /// <summary>An input still running after this long is a hang.</summary>
    public TimeSpan HangTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Only these targets (null: all).</summary>
    public IReadOnlyCollection<string>? Targets { get; init; }
    /// <summary>Where each crashing or hanging input is written, for reproduction (null: nowhere).</summary>
    public string? FindingsFolder { get; init; }
    public Action<string>? Log { get; init; }
}

/// <summary>A crash (an exception the target's contract does not allow) or a hang, with the input that caused it.</summary>
public sealed record FuzzFinding(string Target, long Index, string Kind, string Detail, string? SavedAs);

public sealed record TargetReport(string Name, long Inputs, long Accepted, long Rejected, int Crashes, int Hangs, double Seconds,
    IReadOnlyList<(string Reason, long Count)> TopRejections);

public sealed record FuzzReport(IReadOnlyList<TargetReport> Targets, IReadOnlyList<FuzzFinding> Findings, double Seconds, long PeakWorkingSetBytes)
{
    public long Inputs => Targets.Sum(t => t.Inputs);
    public long Rejected => Targets.Sum(t => t.Rejected);
    public int Crashes => Targets.Sum(t => t.Crashes);
    public int Hangs => Targets.Sum(t => t.Hangs);

    public string Table()
    {
        var lines = new List<string> { $"{"target",-14} {"inputs",10} {"accepted",10} {"rejected",10} {"crashes",8} {"hangs",6} {"seconds",8}" };
        foreach (var t in Targets) lines.Add($"{t.Name,-14} {t.Inputs,10:N0} {t.Accepted,10:N0} {t.Rejected,10:N0} {t.Crashes,8} {t.Hangs,6} {t.Seconds,8:F1}");
        lines.Add($"{"total",-14} {Inputs,10:N0} {Targets.Sum(t => t.Accepted),10:N0} {Rejected,10:N0} {Crashes,8} {Hangs,6} {Seconds,8:F1}");
        lines.Add($"peak working set {PeakWorkingSetBytes / (1024.0 * 1024):F0} MiB");
        lines.Add("most frequent refusals per target:");
        foreach (var t in Targets)
            lines.AddRange(t.TopRejections.Select(r => $"  {t.Name,-13} {r.Count,8:N0}  {r.Reason}"));
        lines.AddRange(Findings.Select(f => $"{f.Kind} in {f.Target} #{f.Index}: {f.Detail}{(f.SavedAs is null ? "" : $" (input: {f.SavedAs})")}"));
        return string.Join(Environment.NewLine, lines);
    }
}

/// <summary>Seeded, bounded mutation fuzzing: each input is a seed of the target mutated 1–4 times (or a structural JSON edit),
/// never larger than the target's bound; it must either be accepted or refused with one of the target's own exceptions.
/// Inputs run on a worker thread watched from this one: an input running past the hang timeout is recorded, its worker
/// abandoned, and fuzzing goes on with a fresh one.</summary>
public static class Fuzzer
{
    public static FuzzReport Run(IReadOnlyList<FuzzTarget> targets, FuzzOptions options)
    {
        var selected = targets.Where(t => options.Targets is null || options.Targets.Contains(t.Name)).ToList();
        var findings = new List<FuzzFinding>();
        var reports = new List<TargetReport>();
        var total = Stopwatch.StartNew();
        long peak = 0;
        for (int ti = 0; ti < selected.Count; ti++)
        {
            var target = selected[ti];
            var budget = options.Duration is TimeSpan d ? d / selected.Count : (TimeSpan?)null;
            var report = RunTarget(target, options, new Random(unchecked(options.Seed * 1_000_003 + Stable(target.Name))), budget, findings, ref peak);
            reports.Add(report);
            options.Log?.Invoke($"{target.Name}: {report.Inputs:N0} inputs, {report.Rejected:N0} rejected, {report.Crashes} crashes, {report.Hangs} hangs, {report.Seconds:F1} s");
        }
        peak = Math.Max(peak, Process.GetCurrentProcess().PeakWorkingSet64);
        return new FuzzReport(reports, findings, total.Elapsed.TotalSeconds, peak);
    }

    /// <summary>A name's hash that is the same in every process (string.GetHashCode and HashCode.Combine are randomised per process).</summary>
    static int Stable(string s) { int h = 17; foreach (var c in s) h = h * 31 + c; return h; }

    sealed class Worker
    {
        public volatile int State;           // 0 idle, 1 running, 2 done
        public byte[] Input = [];
        public Exception? Error;
        public readonly SemaphoreSlim Go = new(0), Done = new(0);
    }

    static TargetReport RunTarget(FuzzTarget target, FuzzOptions options, Random rng, TimeSpan? budget, List<FuzzFinding> findings, ref long peak)
    {
        var mutator = new Mutator(rng, target.MaxBytes);
        long inputs = 0, accepted = 0, rejected = 0;
        var reasons = new Dictionary<string, long>();
        int crashes = 0, hangs = 0;
        var watch = Stopwatch.StartNew();
        var worker = Start(target);
        while (budget is TimeSpan b ? watch.Elapsed < b : inputs < options.InputsPerTarget)
        {
            // the seeds themselves first, then mutations of them
            byte[] input = inputs < target.Seeds.Count ? target.Seeds[(int)inputs] : mutator.Mutate(target.Seeds[rng.Next(target.Seeds.Count)], target.Seeds, target.Json);
            if (target.Fixup is not null && inputs >= target.Seeds.Count && rng.Next(2) == 0) input = target.Fixup(input);
            long index = inputs++;
            worker.Input = input;
            worker.Error = null;
            worker.State = 1;
            worker.Go.Release();
            if (!worker.Done.Wait(options.HangTimeout))
            {
                hangs++;
                findings.Add(new FuzzFinding(target.Name, index, "hang", $"still running after {options.HangTimeout.TotalSeconds:F0} s", Save(options, target, index, input, "hang")));
                worker = Start(target);   // the stuck one is abandoned (a background thread)
                continue;
            }
            if (worker.Error is null) accepted++;
            else if (target.IsRejection(worker.Error))
            {
                rejected++;
                var reason = Reason(worker.Error.Message);
                reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
            }
            else
            {
                crashes++;
                var e = worker.Error;
                findings.Add(new FuzzFinding(target.Name, index, "crash", $"{e.GetType().Name}: {e.Message} at {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}",
                    Save(options, target, index, input, "crash")));
            }
            if ((index & 255) == 0) peak = Math.Max(peak, Environment.WorkingSet);
        }
        worker.Input = [];
        worker.State = 3;
        worker.Go.Release();
        return new TargetReport(target.Name, inputs, accepted, rejected, crashes, hangs, watch.Elapsed.TotalSeconds,
            reasons.OrderByDescending(r => r.Value).Take(5).Select(r => (r.Key, r.Value)).ToArray());
    }

    /// <summary>A refusal's message without its file name, offsets and numbers: what kind of refusal it was.</summary>
    static string Reason(string message)
    {
        int colon = message.IndexOf(": ", StringComparison.Ordinal);
        var m = colon >= 0 && colon < 60 ? message[(colon + 2)..] : message;
        m = System.Text.RegularExpressions.Regex.Replace(m, @"\d+", "#");
        return m.Length > 70 ? m[..70] : m;
    }

    static Worker Start(FuzzTarget target)
    {
        var w = new Worker();
        var thread = new Thread(() =>
        {
            while (true)
            {
                w.Go.Wait();
                if (w.State == 3) return;
                try { target.Run(w.Input); }
                catch (Exception e) { w.Error = e; }
                w.State = 2;
                w.Done.Release();
            }
        }, 16 << 20) { IsBackground = true, Name = $"fuzz {target.Name}" };   // 16 MiB stack: deep recursion shows as a crash, not a lost process
        thread.Start();
        return w;
    }

    static string? Save(FuzzOptions options, FuzzTarget target, long index, byte[] input, string kind)
    {
        if (options.FindingsFolder is null) return null;
        Directory.CreateDirectory(options.FindingsFolder);
        var path = Path.Combine(options.FindingsFolder, $"{kind}-{target.Name}-seed{options.Seed}-{index}.bin");
        File.WriteAllBytes(path, input);
        return path;
    }
}
