using System.CommandLine;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench infer</c>: ViT forward throughput, ours and PyTorch's.</summary>
internal static class InferBench
{
    public static Command Create()
    {
        var cmd = new Command("infer", "ViT forward pass throughput (images/s).");
        var s = BenchCommand.AddShared(cmd, torchSharp: true);
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
            // the TorchSharp backend in this process, after ours (its LibTorch threads set to the same count)
            var sharp = s.TorchSharp(r) is { } compute ? MLNet.MemoryTokens.TorchSharp.Bench.TorchBenchmarks.Inference(vit, b, compute, seconds) : null;
            if (sharp is not null) Console.WriteLine($"TorchSharp backend: {sharp.Device}, {sharp.Precision}, LibTorch from {MLNet.MemoryTokens.TorchSharp.Native.TorchBackend.LoadedFrom}");
            var torch = r.GetValue(s.NoTorch) ? null : BenchCommand.RunTorch(r, s, ["infer", "--batch", b.ToString(), "--image-size", px.ToString(), .. r.GetValue(model) is string mm ? new[] { "--model", mm } : []]).FirstOrDefault();
            BenchReport.Print([("images/s", ours["images_per_second"], sharp?.ImagesPerSecond, torch?.GetValueOrDefault("images_per_second"), true),
                          ("ms per batch", sec * 1000, sharp?.MedianMilliseconds, torch is null ? null : torch["seconds"] * 1000, false),
                          ("peak RSS MB", ours["peak_rss_mb"], sharp?.PeakRssMb, torch?.GetValueOrDefault("peak_rss_mb"), false)]);
            return 0;
        }));
        return cmd;
    }
}
