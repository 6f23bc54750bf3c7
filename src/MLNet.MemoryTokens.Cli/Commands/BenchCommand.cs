using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt bench</c>: our figures and PyTorch's for the same work, from one run, with ratios.</summary>
/// <remarks>PyTorch runs as a child process (reference/bench_torch.py with the given python, Debian's python3-torch);
/// both sides use the same thread count, shapes and timing rule (median of repeated runs after a warm-up).</remarks>
internal static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Benchmark against PyTorch side by side: 'infer' (ViT forward) or 'gemm' (ViT-Ti linear-layer shapes).");
        cmd.Subcommands.Add(Infer());
        cmd.Subcommands.Add(GemmBench());
        cmd.Subcommands.Add(TrainBench());
        cmd.Subcommands.Add(MultiTaskBench());
        cmd.Subcommands.Add(VqtBench());
        return cmd;
    }

    static Command VqtBench()
    {
        var cmd = new Command("vqt", "A VQT training step at batch B: 'cached' (an epoch from the key/value cache) or 'first' (the first epoch: backbone pass filling the cache, then the query paths).");
        var s = AddShared(cmd);
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with ViT-Ti/16's shape)." };
        var mode = new Option<string>("--mode") { DefaultValueFactory = _ => "cached" };
        mode.AcceptOnlyFromAmong("cached", "first");
        var queries = new Option<int>("--queries") { DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var torchModes = new Option<string>("--torch-modes") { Description = "PyTorch steps to compare with (comma list of cached, detached, recompute).", DefaultValueFactory = _ => "cached,detached,recompute" };
        cmd.Options.Add(model); cmd.Options.Add(mode); cmd.Options.Add(queries); cmd.Options.Add(batch); cmd.Options.Add(size); cmd.Options.Add(torchModes);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int b = r.GetValue(batch), px = r.GetValue(size), t = r.GetValue(queries);
            string m = r.GetValue(mode)!;
            Parallelism.Threads = r.GetValue(s.Threads);
            var vit = r.GetValue(model) is string path
                ? Backbone.Load(path, new BackboneOptions { ImageSize = px, DropHead = true }).Model
                : VisionTransformer.CreateRandom(new VitConfig { ImageSize = px, NumClasses = 0 }, seed: 1);
            var vqt = new MLNet.MemoryTokens.Tuning.QueryTuning.QueryTunedVit(vit, 10, t, 0.1f, seed: 0);
            var optimizer = new MLNet.MemoryTokens.Training.AdamW(vqt.Parameters, 0f);
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            var labels = Enumerable.Range(0, b).Select(i => i % 10).ToArray();
            var indices = Enumerable.Range(0, b).ToArray();
            using var cache = new MLNet.MemoryTokens.Tuning.QueryTuning.KeyValueCache(b, vit.Config, MLNet.MemoryTokens.IO.TensorDType.F16, long.MaxValue, null, "bench");
            vqt.CaptureInto(x, cache, indices);
            if (m == "cached")
            {
                // as the trainer does once its cache is complete: an epoch from the cache never runs the backbone
                vqt.ReleaseCaptureBuffers();
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }
            void Train(MLNet.MemoryTokens.Tuning.QueryTuning.QueryTunedVit.KeyValues kv)
            {
                var logits = vqt.ForwardCached(kv, keepForBackward: true);
                var d = new Tensor(logits.Shape);
                MLNet.MemoryTokens.Training.CrossEntropy.Compute(logits.Data, labels, 10, 0.1f, d.Data);
                vqt.ZeroGrad();
                vqt.Backward(d);
                optimizer.Step(vqt.Parameters, 1e-3f);
            }
            Action step = m == "cached"
                ? () => Train(cache.Load(indices))
                : () => { vqt.CaptureInto(x, cache, indices); Train(cache.Load(indices)); };
            double sec = Timing.Median(step, r.GetValue(s.Seconds));
            double cacheMb = cache.TotalBytes / 1e6;
            Console.WriteLine($"VQT step ({m}), T={t}, ViT D={vit.Config.Dim} depth={vit.Config.Depth} image {px}, batch {b}, {Parallelism.Threads} threads; our cache F16 {cacheMb:F1} MB for these {b} images (in the RSS figure)");
            var rows = new List<(string, double, double?, bool)>();
            var torchRuns = r.GetValue(s.NoTorch) ? [] : r.GetValue(torchModes)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(tm =>
                (tm, RunTorch(r, s, ["vqt", "--mode", tm, "--queries", t.ToString(), "--batch", b.ToString(), "--image-size", px.ToString(),
                    .. r.GetValue(model) is string mm ? new[] { "--model", mm } : []]).First())).ToList();
            double ours = b / sec;
            if (torchRuns.Count == 0) rows.Add(("images/s", ours, null, true));
            foreach (var (tm, res) in torchRuns) rows.Add(($"images/s vs PyTorch {tm}", ours, res["images_per_second"], true));
            // peak resident memory during the timed steps, each side less the cache it holds (ours: F16 keys/values;
            // PyTorch's cached mode: its float32 block inputs)
            double peak = Timing.PeakRssMb() - cacheMb;
            if (torchRuns.Count == 0) rows.Add(("peak RSS MB less cache", peak, null, false));
            foreach (var (tm, res) in torchRuns) rows.Add(($"peak MB less cache vs {tm}", peak, res["peak_rss_mb"] - res.GetValueOrDefault("cache_mb"), false));
            Report.Print(rows);
            return 0;
        }));
        return cmd;
    }

    static Command TrainBench()
    {
        var cmd = new Command("train", "One training step (forward, cross-entropy, backward, AdamW) at batch B: memory tokens (backbone frozen) or full fine-tuning.");
        var s = AddShared(cmd);
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with ViT-Ti/16's shape)." };
        var method = new Option<string>("--method") { DefaultValueFactory = _ => "memory" };
        method.AcceptOnlyFromAmong("memory", "full");
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var rounds = new Option<int>("--rounds") { Description = "Ours then PyTorch, this many times: the speed-up quoted is the median of the rounds' ratios (a noisy machine moves both sides).", DefaultValueFactory = _ => 1 };
        cmd.Options.Add(model); cmd.Options.Add(method); cmd.Options.Add(tokens); cmd.Options.Add(batch); cmd.Options.Add(size); cmd.Options.Add(rounds);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int b = r.GetValue(batch), px = r.GetValue(size), m = r.GetValue(tokens), n = Math.Max(1, r.GetValue(rounds));
            string meth = r.GetValue(method)!;
            Parallelism.Threads = r.GetValue(s.Threads);
            var vit = r.GetValue(model) is string path
                ? Backbone.Load(path, new BackboneOptions { ImageSize = px, DropHead = true }).Model
                : VisionTransformer.CreateRandom(new VitConfig { ImageSize = px, NumClasses = 0 }, seed: 1);
            var tuning = new MLNet.MemoryTokens.Tuning.TuningOptions
            {
                Method = meth == "full" ? MLNet.MemoryTokens.Tuning.TuningMethod.Full : MLNet.MemoryTokens.Tuning.TuningMethod.Memory, MemoryTokens = m,
            };
            var adapted = tuning.CreateModel(vit, 10, seed: 0);
            var optimizer = new MLNet.MemoryTokens.Training.AdamW(adapted.Parameters, 0f);
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            var labels = Enumerable.Range(0, b).Select(i => i % 10).ToArray();
            void Step()
            {
                var logits = adapted.Forward(x, keepForBackward: true);
                var d = new Tensor(logits.Shape);
                MLNet.MemoryTokens.Training.CrossEntropy.Compute(logits.Data, labels, 10, 0.1f, d.Data);
                adapted.ZeroGrad();
                adapted.Backward(d);
                optimizer.Step(adapted.Parameters, 1e-4f);
            }
            Console.WriteLine($"training step, {meth}{(meth == "memory" ? $" m={m}" : "")}, ViT D={vit.Config.Dim} depth={vit.Config.Depth} image {px}, batch {b}, {Parallelism.Threads} threads{(n > 1 ? $", {n} rounds" : "")}");
            var (ours, torches, peaks) = (new List<double>(), new List<Dictionary<string, double>>(), new List<double>());
            for (int k = 0; k < n; k++)
            {
                ours.Add(Timing.Median(Step, r.GetValue(s.Seconds)));
                peaks.Add(Timing.PeakRssMb());
                if (!r.GetValue(s.NoTorch))
                    torches.Add(RunTorch(r, s, ["train", "--method", meth, "--tokens", m.ToString(), "--batch", b.ToString(), "--image-size", px.ToString(),
                        .. r.GetValue(model) is string mm ? new[] { "--model", mm } : []]).First());
                if (n > 1)
                    Console.WriteLine($"round {k + 1}: ours {b / ours[k]:F1} img/s" + (torches.Count > k ? $", PyTorch {torches[k]["images_per_second"]:F1} img/s, {torches[k]["seconds"] / ours[k]:F2}x" : ""));
            }
            double sec = Timing.MedianOf(ours);
            Dictionary<string, double>? torch = torches.Count == 0 ? null : new()
            {
                ["images_per_second"] = Timing.MedianOf(torches.Select(t => t["images_per_second"])), ["seconds"] = Timing.MedianOf(torches.Select(t => t["seconds"])),
                ["peak_rss_mb"] = torches.Max(t => t["peak_rss_mb"]),
            };
            Report.Print([("images/s", b / sec, torch?.GetValueOrDefault("images_per_second"), true),
                          ("ms per step", sec * 1000, torch is null ? null : torch["seconds"] * 1000, false),
                          ("peak RSS MB", peaks.Max(), torch?.GetValueOrDefault("peak_rss_mb"), false)]);
            if (n > 1 && torches.Count == n)
                Console.WriteLine($"speed-up, median of the {n} rounds' ratios: {Timing.MedianOf(torches.Select((t, k) => t["seconds"] / ours[k])):F2}x");
            return 0;
        }));
        return cmd;
    }

    static Command MultiTaskBench()
    {
        var cmd = new Command("multitask", "One masked forward pass serving the original head plus T added tasks, against a plain forward (ours only).");
        var s = AddShared(cmd);
        var tasks = new Option<int>("--tasks") { DefaultValueFactory = _ => 5 };
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        cmd.Options.Add(tasks); cmd.Options.Add(tokens); cmd.Options.Add(batch); cmd.Options.Add(size);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int b = r.GetValue(batch), px = r.GetValue(size), t = r.GetValue(tasks), m = r.GetValue(tokens);
            Parallelism.Threads = r.GetValue(s.Threads);
            var vit = VisionTransformer.CreateRandom(new VitConfig { ImageSize = px }, seed: 1);
            var backbone = new Backbone(vit, new PreprocessConfig { InputSize = px }, "random", Backbone.ComputeFingerprint(vit.Parameters));
            var tuning = new MLNet.MemoryTokens.Tuning.TuningOptions { Method = MLNet.MemoryTokens.Tuning.TuningMethod.Memory, MemoryTokens = m, Masked = true };
            var adapters = Enumerable.Range(0, t).Select(i => ($"task{i}", MLNet.MemoryTokens.Tuning.Adapter.From(tuning.CreateModel(vit, 10, i), backbone, tuning,
                Enumerable.Range(0, 10).Select(c => c.ToString()).ToArray(), backbone.Preprocess))).ToList();
            var multi = new MLNet.MemoryTokens.Tuning.MemoryTokens.MultiTaskVit(backbone, adapters);
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            // the two in turn, call by call: a ratio of pairs holds when the machine's speed drifts
            var (plain, both, ratio) = Timing.Paired(() => vit.Forward(x), () => multi.Forward(x), r.GetValue(s.Seconds));
            Console.WriteLine($"original head + {t} masked tasks (m={m}) in one pass vs a plain forward, batch {b}, image {px}, {Parallelism.Threads} threads");
            Console.WriteLine($"plain forward      {plain * 1000,8:F1} ms  {b / plain,7:F1} img/s");
            Console.WriteLine($"multi-task forward {both * 1000,8:F1} ms  {b / both,7:F1} img/s");
            Console.WriteLine($"cost ratio         {ratio,8:F3}x  (median of per-pair ratios)");
            return 0;
        }));
        return cmd;
    }

    sealed record Shared(Option<int> Threads, Option<double> Seconds, Option<string> Python, Option<string?> Script, Option<bool> NoTorch);

    static Shared AddShared(Command cmd)
    {
        var s = new Shared(
            new Option<int>("--threads") { Description = "Threads for both sides.", DefaultValueFactory = _ => 2 },
            new Option<double>("--seconds") { Description = "Minimum timed seconds per figure.", DefaultValueFactory = _ => 5 },
            new Option<string>("--python") { Description = "Python with torch (Debian python3-torch).", DefaultValueFactory = _ => "/usr/bin/python3" },
            new Option<string?>("--torch-script") { Description = "Path of reference/bench_torch.py (default: found from the current folder upwards)." },
            new Option<bool>("--no-torch") { Description = "Only our figures." });
        cmd.Options.Add(s.Threads); cmd.Options.Add(s.Seconds); cmd.Options.Add(s.Python); cmd.Options.Add(s.Script); cmd.Options.Add(s.NoTorch);
        return s;
    }

    static Command Infer()
    {
        var cmd = new Command("infer", "ViT forward pass throughput (images/s).");
        var s = AddShared(cmd);
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with ViT-Ti/16's shape: same compute)." };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        cmd.Options.Add(model); cmd.Options.Add(batch); cmd.Options.Add(size);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int threads = r.GetValue(s.Threads), b = r.GetValue(batch), px = r.GetValue(size);
            double seconds = r.GetValue(s.Seconds);
            Parallelism.Threads = threads;
            var vit = r.GetValue(model) is string m
                ? Backbone.Load(m, new BackboneOptions { ImageSize = px }).Model
                : VisionTransformer.CreateRandom(new VitConfig { ImageSize = px }, seed: 1);
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            double sec = Timing.Median(() => vit.Forward(x), seconds);
            var ours = new Dictionary<string, double> { ["images_per_second"] = b / sec, ["seconds"] = sec, ["peak_rss_mb"] = Timing.PeakRssMb() };
            Console.WriteLine($"ViT forward, D={vit.Config.Dim} depth={vit.Config.Depth} image {px}, batch {b}, {threads} threads, {Environment.ProcessorCount} cores, Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
            var torch = r.GetValue(s.NoTorch) ? null : RunTorch(r, s, ["infer", "--batch", b.ToString(), "--image-size", px.ToString(), .. r.GetValue(model) is string mm ? new[] { "--model", mm } : []]).FirstOrDefault();
            Report.Print([("images/s", ours["images_per_second"], torch?.GetValueOrDefault("images_per_second"), true),
                          ("ms per batch", sec * 1000, torch is null ? null : torch["seconds"] * 1000, false),
                          ("peak RSS MB", ours["peak_rss_mb"], torch?.GetValueOrDefault("peak_rss_mb"), false)]);
            return 0;
        }));
        return cmd;
    }

    static Command GemmBench()
    {
        var cmd = new Command("gemm", "SGEMM GFLOP/s at ViT-Ti/16's linear-layer shapes (batch 32), y = x·Wᵀ.");
        var s = AddShared(cmd);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            Parallelism.Threads = r.GetValue(s.Threads);
            double seconds = r.GetValue(s.Seconds);
            var torch = r.GetValue(s.NoTorch) ? [] : RunTorch(r, s, ["gemm"]);
            Console.WriteLine($"SGEMM, {Parallelism.Threads} threads, kernel {Gemm.DefaultKernel}; GFLOP/s, ours with weights packed per call (as PyTorch) and packed once (as our frozen backbone)");
            var rows = new List<(string, double, double?, bool)>();
            foreach (var (name, m, n, k) in new[] { ("qkv", 6304, 576, 192), ("proj", 6304, 192, 192), ("fc1", 6304, 768, 192), ("fc2", 6304, 192, 768) })
            {
                var a = new float[m * k]; var w = new float[n * k]; var c = new float[m * n];
                var rng = new Random(1);
                for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
                for (int i = 0; i < w.Length; i++) w[i] = (float)rng.NextDouble() - 0.5f;
                double flop = 2.0 * m * n * k;
                double perCall = Timing.Median(() => Gemm.Multiply(false, true, m, n, k, a, k, w, k, c, n), seconds);
                var packed = Gemm.Pack(true, k, n, w, k);
                double once = Timing.Median(() => Gemm.Multiply(false, m, a, k, packed, c, n), seconds);
                double? theirs = torch.FirstOrDefault(t => t.TryGetValue("m", out var tm) && (int)tm == m && (int)t["n"] == n && (int)t["k"] == k)?["gflops"];
                rows.Add(($"{name} {m}x{n}x{k}", flop / perCall / 1e9, theirs, true));
                rows.Add(($"{name} packed once", flop / once / 1e9, theirs, true));
            }
            Report.Print(rows);
            return 0;
        }));
        return cmd;
    }

    static List<Dictionary<string, double>> RunTorch(ParseResult r, Shared s, string[] args)
    {
        string script = r.GetValue(s.Script) ?? FindScript("reference/bench_torch.py");
        var psi = new ProcessStartInfo(r.GetValue(s.Python)!) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--threads"); psi.ArgumentList.Add(r.GetValue(s.Threads).ToString());
        psi.ArgumentList.Add("--seconds"); psi.ArgumentList.Add(r.GetValue(s.Seconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Exception e) { throw new InvalidOperationException($"Could not start '{psi.FileName}' for the PyTorch side ({e.Message}); install python3-torch or pass --no-torch."); }
        var stderr = p.StandardError.ReadToEndAsync();
        var lines = new List<Dictionary<string, double>>();
        while (p.StandardOutput.ReadLine() is string line)
        {
            if (!line.StartsWith('{')) continue;
            var doc = JsonDocument.Parse(line).RootElement;
            lines.Add(doc.EnumerateObject().Where(e => e.Value.ValueKind == JsonValueKind.Number).ToDictionary(e => e.Name, e => e.Value.GetDouble()));
        }
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"PyTorch benchmark failed (exit {p.ExitCode}): {stderr.Result.Trim()}");
        return lines;
    }

    internal static string FindScript(string relative)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, relative))) return Path.Combine(dir.FullName, relative);
        throw new FileNotFoundException($"Could not find {relative} above the current folder; pass --torch-script.");
    }
}

/// <summary>Timing and memory figures measured the same way on our side as reference/bench_torch.py does on PyTorch's.</summary>
internal static class Timing
{
    /// <summary>Median seconds of repeated calls, running for at least <paramref name="minSeconds"/> and 3 calls, after a warm-up of
    /// at least 2 calls and 2 seconds (the JIT's tiered compilation settles on optimised code during the first calls).</summary>
    public static double Median(Action action, double minSeconds)
    {
        ResetPeakRss();   // the peak figure is the work's own (set-up such as filling a cache does not count)
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.Elapsed.TotalSeconds < 2; i++) action();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            action();
            times.Add(sw.Elapsed.TotalSeconds);
        } while (total.Elapsed.TotalSeconds < minSeconds || times.Count < 3);
        return MedianOf(times);
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

/// <summary>Prints figure rows as a table: ours, PyTorch's, and ours/PyTorch (or PyTorch/ours where lower is better).</summary>
internal static class Report
{
    public static void Print(IEnumerable<(string Name, double Ours, double? Torch, bool HigherIsBetter)> rows)
    {
        Console.WriteLine($"{"figure",-28} {"ours",12} {"PyTorch",12} {"speed-up",9}");
        foreach (var (name, ours, torch, higher) in rows)
        {
            string ratio = torch is double t && t > 0 && ours > 0 ? $"{(higher ? ours / t : t / ours):F2}x" : "-";
            Console.WriteLine($"{name,-28} {ours,12:F1} {(torch is double tt ? tt.ToString("F1") : "-"),12} {ratio,9}");
        }
    }
}
