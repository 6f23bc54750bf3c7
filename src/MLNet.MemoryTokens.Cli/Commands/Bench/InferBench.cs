using System.CommandLine;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

#pragma warning disable MMT0001   // the benchmarks measure the experimental int8 backbone too

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench infer</c>: ViT forward throughput and peak memory, ours, ONNX Runtime's and PyTorch's, with the forward's
/// rate as a fraction of our GEMM peak measured in the same run.</summary>
internal static class InferBench
{
    public static Command Create()
    {
        var cmd = new Command("infer", "ViT forward pass throughput (images/s) and peak memory against ONNX Runtime and PyTorch (and the TorchSharp backend).");
        var s = BenchCommand.AddShared(cmd, torchSharp: true);
        var ort = OnnxRuntimeAnchor.Add(cmd);
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with --arch's shape: the same compute)." };
        var arch = BenchArch.Option();
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var rounds = new Option<int>("--rounds") { Description = "Ours then the anchors, this many times: the speed-ups quoted are the medians of the rounds' ratios.", DefaultValueFactory = _ => 1 };
        cmd.Options.Add(model); cmd.Options.Add(arch); cmd.Options.Add(batch); cmd.Options.Add(size); cmd.Options.Add(rounds);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int threads = r.GetValue(s.Threads), b = r.GetValue(batch), px = r.GetValue(size), n = Math.Max(1, r.GetValue(rounds));
            double seconds = r.GetValue(s.Seconds);
            string a = r.GetValue(arch)!;
            string? path = r.GetValue(model);
            Parallelism.Threads = threads;
            var vit = path is string m
                ? Backbone.Load(m, new BackboneOptions { ImageSize = px }).Model
                : VisionTransformer.CreateRandom(BenchArch.Config(a, px), seed: 1);
            var config = vit.Config;
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            Console.WriteLine($"ViT forward, {(path is null ? a : Path.GetFileName(path))} ({BenchArch.Describe(config)}) image {px}, batch {b}, {threads} threads, {Environment.ProcessorCount} cores, Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
            var (ours, cpus, peaks) = (new List<double>(), new List<double>(), new List<double>());
            var (orts, torches) = (new List<Dictionary<string, double>>(), new List<Dictionary<string, double>>());
            // --precision (the backend options'): int16 / int8 run our integer backbone beside our fp32 and ONNX Runtime's
            // dynamically quantised model of the same weights
            var integer = r.GetValue(s.Backend!.Precision) switch { "int8" => InferencePrecision.Int8, "int16" => InferencePrecision.Int16, _ => InferencePrecision.Fp32 };
            bool integerMode = integer != InferencePrecision.Fp32;
            var (oursFp32, ortsQuantized) = (new List<Dictionary<string, double>>(), new List<Dictionary<string, double>>());
            for (int k = 0; k < n; k++)
            {
                // integer first: the first round's peak is what the integer path needs (fp32's packed panels come after)
                vit.InferencePrecision = integer;
                var (sec, cpu) = Timing.Measure(() => vit.Forward(x), seconds);
                ours.Add(sec); cpus.Add(cpu); peaks.Add(Timing.PeakRssMb());
                if (integerMode)
                {
                    vit.InferencePrecision = InferencePrecision.Fp32;   // the same model in fp32: the reference the integer path is measured against
                    var (s32, c32) = Timing.Measure(() => vit.Forward(x), seconds);
                    oursFp32.Add(new() { ["images_per_second"] = b / s32, ["seconds"] = s32, ["cpu_seconds"] = c32 });
                }
                if (integerMode && !r.GetValue(ort.NoOrt)) ortsQuantized.Add(OnnxRuntimeAnchor.InferQuantized(r, s, ort, vit, path is null ? a : Path.GetFileNameWithoutExtension(path), px, b));
                if (!r.GetValue(ort.NoOrt)) orts.Add(OnnxRuntimeAnchor.Infer(r, s, ort, a, px, b, path));
                if (!r.GetValue(s.NoTorch))
                    torches.Add(BenchCommand.RunTorch(r, s, ["infer", "--arch", a, "--batch", b.ToString(), "--image-size", px.ToString(), .. path is string mm ? new[] { "--model", mm } : []]).First());
                if (n > 1)
                    Console.WriteLine($"round {k + 1}: ours {b / sec:F1} img/s" + (orts.Count > k ? $", ONNX Runtime {orts[k]["images_per_second"]:F1} ({orts[k]["seconds"] / sec:F2}x)" : "")
                        + (torches.Count > k ? $", PyTorch {torches[k]["images_per_second"]:F1} ({torches[k]["seconds"] / sec:F2}x)" : ""));
            }
            double ourSec = Timing.MedianOf(ours);
            // after our timed calls: the probe's matrices would otherwise sit in the resident set our peak is read from
            double gemmPeak = GemmBench.Peak(config, b, Math.Min(2, seconds / 2));
            // the TorchSharp backend in this process, after ours (its LibTorch threads set to the same count)
            var sharp = s.TorchSharp(r) is { } compute ? MLNet.MemoryTokens.TorchSharp.Bench.TorchBenchmarks.Inference(vit, b, compute, seconds) : null;
            if (sharp is not null) Console.WriteLine($"TorchSharp backend: {sharp.Device}, {sharp.Precision}, LibTorch from {MLNet.MemoryTokens.TorchSharp.Native.TorchBackend.LoadedFrom}");
            var sharpFigures = sharp is null ? null : new Dictionary<string, double> { ["images_per_second"] = sharp.ImagesPerSecond, ["seconds"] = sharp.MedianMilliseconds / 1000, ["peak_rss_mb"] = sharp.PeakRssMb };
            var anchors = new List<(string Name, Dictionary<string, double>? Figures)>
            {
                ("ours fp32", Median(oursFp32)), ("ONNX Runtime", Median(orts)), ("ONNX Runtime int8", Median(ortsQuantized)), ("TorchSharp", sharpFigures), ("PyTorch", Median(torches)),
            }.Where(t => t.Figures is not null).ToList();
            if (integerMode) Console.WriteLine($"ours: {integer} backbone (Linear layers integer, per-channel weights, per-row activations); 'ours fp32' the same model in fp32; 'ONNX Runtime int8' its dynamically quantised model of the same weights (per-tensor int8 weights, uint8 activations); peak RSS: the integer path's, before fp32 ran");
            double?[] Col(Func<Dictionary<string, double>, double?> f) => anchors.Select(t => f(t.Figures!)).ToArray();
            double? Peak(Dictionary<string, double> f) => f.TryGetValue("peak_rss_mb", out var v) ? v : null;
            BenchReport.Print(anchors.Select(t => t.Name).ToList(),
            [
                ("images/s", b / ourSec, Col(f => f["images_per_second"]), true),
                ("ms per batch", ourSec * 1000, Col(f => f["seconds"] * 1000), false),
                ("CPU ms per batch", Timing.MedianOf(cpus) * 1000, Col(f => f.TryGetValue("cpu_seconds", out var c) ? c * 1000 : null), false),
                ("peak RSS MB", integerMode ? peaks[0] : peaks.Max(), Col(Peak), false),
            ]);
            double flop = BenchArch.ForwardFlops(config) * b;
            if (integerMode) Console.WriteLine($"(the integer path runs {flop / ourSec / 1e9:F1} G operations/s: the fraction below is of the fp32 GEMM peak, not a bound for it)");
            Console.WriteLine($"forward {flop / ourSec / 1e9:F1} GFLOP/s ({BenchArch.ForwardFlops(config) / 1e9:F2} GFLOP per image): {flop / ourSec / 1e9 / gemmPeak:P0} of our GEMM peak, {gemmPeak:F1} GFLOP/s (the best of this model's four linear-layer shapes, weights packed once, measured in this run)"
                + string.Concat(anchors.Select(t => $"; {t.Name} {flop / t.Figures!["seconds"] / 1e9:F1} GFLOP/s")));
            if (n > 1)
                foreach (var (name, runs) in new[] { ("ours fp32", oursFp32), ("ONNX Runtime", orts), ("ONNX Runtime int8", ortsQuantized), ("PyTorch", torches) })
                    if (runs.Count == n) Console.WriteLine($"speed-up over {name}, median of the {n} rounds' ratios: {Timing.MedianOf(runs.Select((t, k) => t["seconds"] / ours[k])):F2}x");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Per field, the median over rounds (the peak memory: the largest); null without rounds.</summary>
    internal static Dictionary<string, double>? Median(List<Dictionary<string, double>> runs) =>
        runs.Count == 0 ? null : runs[0].Keys.Where(key => runs.All(x => x.ContainsKey(key)))
            .ToDictionary(key => key, key => key == "peak_rss_mb" ? runs.Max(x => x[key]) : Timing.MedianOf(runs.Select(x => x[key])));
}
