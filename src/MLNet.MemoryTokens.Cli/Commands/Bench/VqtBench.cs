using System.CommandLine;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench vqt</c>: one VQT training step from the key/value cache (or the first epoch's, filling it), ours and PyTorch's.</summary>
internal static class VqtBench
{
    public static Command Create()
    {
        var cmd = new Command("vqt", "A VQT training step at batch B: 'cached' (an epoch from the key/value cache) or 'first' (the first epoch: backbone pass filling the cache, then the query paths).");
        var s = BenchCommand.AddShared(cmd, torchSharp: true);
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
            var vqt = new QueryTunedVit(vit, 10, t, 0.1f, seed: 0);
            var optimizer = new AdamW(vqt.Parameters, 0f);
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            var labels = Enumerable.Range(0, b).Select(i => i % 10).ToArray();
            var indices = Enumerable.Range(0, b).ToArray();
            using var cache = new KeyValueCache(b, vit.Config, TensorDType.F16, long.MaxValue, null, "bench");
            vqt.CaptureInto(x, cache, indices);
            if (m == "cached")
            {
                // as the trainer does once its cache is complete: an epoch from the cache never runs the backbone
                vqt.ReleaseCaptureBuffers();
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }
            void Train(QueryTunedVit.KeyValues kv)
            {
                var logits = vqt.ForwardCached(kv, keepForBackward: true);
                var d = new Tensor(logits.Shape);
                CrossEntropy.Compute(logits.Data, labels, 10, 0.1f, d.Data);
                vqt.ZeroGrad();
                vqt.Backward(d);
                optimizer.Step(vqt.Parameters, 1e-3f);
            }
            Action step = m == "cached"
                ? () => Train(cache.Load(indices))
                : () => { vqt.CaptureInto(x, cache, indices); Train(cache.Load(indices)); };
            double sec = Timing.Median(step, r.GetValue(s.Seconds));
            double cacheMb = cache.TotalBytes / 1e6;
            double peak = Timing.PeakRssMb() - cacheMb;
            // the TorchSharp backend's VQT step from its own (F16) cache, as the trainer runs it there; its 'first' epoch is not measured
            var sharpCompute = s.TorchSharp(r);
            if (sharpCompute is not null && m != "cached") Console.WriteLine("TorchSharp backend: measured for --mode cached only");
            var sharp = sharpCompute is null || m != "cached" ? null : MLNet.MemoryTokens.TorchSharp.Bench.TorchBenchmarks.TrainingStep(
                new Backbone(vit, new MLNet.MemoryTokens.Imaging.PreprocessConfig { InputSize = px }, r.GetValue(model) ?? "random ViT-Ti/16 shape", "bench"),
                new TuningOptions { Method = TuningMethods.Find("vqt")!.Method, QueryTokens = t, CacheDType = TensorDType.F16 }, b, sharpCompute, r.GetValue(s.Seconds));
            if (sharp is not null) Console.WriteLine($"TorchSharp backend: {sharp.Device}, {sharp.Precision}, LibTorch from {MLNet.MemoryTokens.TorchSharp.Native.TorchBackend.LoadedFrom}; its peak includes its own cache");
            Console.WriteLine($"VQT step ({m}), T={t}, ViT D={vit.Config.Dim} depth={vit.Config.Depth} image {px}, batch {b}, {Parallelism.Threads} threads; our cache F16 {cacheMb:F1} MB for these {b} images (in the RSS figure)");
            var rows = new List<(string, double, double?, double?, bool)>();
            var torchRuns = r.GetValue(s.NoTorch) ? [] : r.GetValue(torchModes)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(tm =>
                (tm, BenchCommand.RunTorch(r, s, ["vqt", "--mode", tm, "--queries", t.ToString(), "--batch", b.ToString(), "--image-size", px.ToString(),
                    .. r.GetValue(model) is string mm ? new[] { "--model", mm } : []]).First())).ToList();
            double ours = b / sec;
            if (torchRuns.Count == 0) rows.Add(("images/s", ours, sharp?.ImagesPerSecond, null, true));
            foreach (var (tm, res) in torchRuns) rows.Add(($"images/s vs PyTorch {tm}", ours, sharp?.ImagesPerSecond, res["images_per_second"], true));
            // peak resident memory during the timed steps, each side less the cache it holds (ours: F16 keys/values;
            // PyTorch's cached mode: its float32 block inputs); TorchSharp's with its cache
            if (torchRuns.Count == 0) rows.Add(("peak RSS MB less cache", peak, sharp?.PeakRssMb, null, false));
            foreach (var (tm, res) in torchRuns) rows.Add(($"peak MB less cache vs {tm}", peak, sharp?.PeakRssMb, res["peak_rss_mb"] - res.GetValueOrDefault("cache_mb"), false));
            BenchReport.Print(rows);
            return 0;
        }));
        return cmd;
    }
}
