using System.CommandLine;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench train</c>: one training step (memory tokens or full fine-tuning), ours and PyTorch's, in rounds.</summary>
internal static class TrainBench
{
    public static Command Create()
    {
        var cmd = new Command("train", "One training step (forward, cross-entropy, backward, AdamW) at batch B: memory tokens (backbone frozen) or full fine-tuning.");
        var s = BenchCommand.AddShared(cmd, torchSharp: true);
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with --arch's shape)." };
        var arch = BenchArch.Option();
        var method = new Option<string>("--method") { DefaultValueFactory = _ => "memory" };
        method.AcceptOnlyFromAmong("memory", "full");
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var rounds = new Option<int>("--rounds") { Description = "Ours then PyTorch, this many times: the speed-up quoted is the median of the rounds' ratios (a noisy machine moves both sides).", DefaultValueFactory = _ => 1 };
        cmd.Options.Add(model); cmd.Options.Add(arch); cmd.Options.Add(method); cmd.Options.Add(tokens); cmd.Options.Add(batch); cmd.Options.Add(size); cmd.Options.Add(rounds);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int b = r.GetValue(batch), px = r.GetValue(size), m = r.GetValue(tokens), n = Math.Max(1, r.GetValue(rounds));
            string meth = r.GetValue(method)!;
            Parallelism.Threads = r.GetValue(s.Threads);
            var vit = r.GetValue(model) is string path
                ? Backbone.Load(path, new BackboneOptions { ImageSize = px, DropHead = true }).Model
                : VisionTransformer.CreateRandom(BenchArch.Config(r.GetValue(arch)!, px, classes: 0), seed: 1);
            var tuning = new TuningOptions
            {
                Method = TuningMethods.Find(meth)!.Method, MemoryTokens = m,   // "memory" or "full", by their names in the method table
            };
            var adapted = tuning.CreateModel(vit, 10, seed: 0);
            var optimizer = new AdamW(adapted.Parameters, 0f);
            var x = new Tensor([b, 3, px, px]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            var labels = Enumerable.Range(0, b).Select(i => i % 10).ToArray();
            void Step()
            {
                var logits = adapted.Forward(x, keepForBackward: true);
                var d = new Tensor(logits.Shape);
                CrossEntropy.Compute(logits.Data, labels, 10, 0.1f, d.Data);
                adapted.ZeroGrad();
                adapted.Backward(d);
                optimizer.Step(adapted.Parameters, 1e-4f);
            }
            string archName = r.GetValue(model) is string p ? Path.GetFileName(p) : r.GetValue(arch)!;
            Console.WriteLine($"training step, {meth}{(meth == "memory" ? $" m={m}" : "")}, {archName} ({BenchArch.Describe(vit.Config)}) image {px}, batch {b}, {Parallelism.Threads} threads{(n > 1 ? $", {n} rounds" : "")}");
            var sharpCompute = s.TorchSharp(r);
            var sharpBackbone = new Backbone(vit, new MLNet.MemoryTokens.Imaging.PreprocessConfig { InputSize = px }, r.GetValue(model) ?? $"random {archName} shape", "bench");
            var (ours, torches, peaks, cpus) = (new List<double>(), new List<Dictionary<string, double>>(), new List<double>(), new List<double>());
            var sharps = new List<MLNet.MemoryTokens.TorchSharp.Bench.TorchBenchFigure>();
            for (int k = 0; k < n; k++)
            {
                var (sec1, cpu1) = Timing.Measure(Step, r.GetValue(s.Seconds));
                ours.Add(sec1); cpus.Add(cpu1);
                peaks.Add(Timing.PeakRssMb());   // after a TorchSharp round, LibTorch's retained memory is in this figure: only round 1's is ours alone
                // the TorchSharp backend's step as the trainer runs it there (its model, step and device optimizer from the method table)
                if (sharpCompute is not null) sharps.Add(MLNet.MemoryTokens.TorchSharp.Bench.TorchBenchmarks.TrainingStep(sharpBackbone, tuning, b, sharpCompute, r.GetValue(s.Seconds)));
                if (!r.GetValue(s.NoTorch))
                    torches.Add(BenchCommand.RunTorch(r, s, ["train", "--arch", r.GetValue(arch)!, "--method", meth, "--tokens", m.ToString(), "--batch", b.ToString(), "--image-size", px.ToString(),
                        .. r.GetValue(model) is string mm ? new[] { "--model", mm } : []]).First());
                if (n > 1)
                    Console.WriteLine($"round {k + 1}: ours {b / ours[k]:F1} img/s" + (sharps.Count > k ? $", TorchSharp {sharps[k].ImagesPerSecond:F1} img/s, {sharps[k].MedianMilliseconds / 1000 / ours[k]:F2}x" : "") +
                                      (torches.Count > k ? $", PyTorch {torches[k]["images_per_second"]:F1} img/s, {torches[k]["seconds"] / ours[k]:F2}x" : ""));
            }
            double sec = Timing.MedianOf(ours);
            // after the timed steps: the probe's matrices would otherwise sit in the resident set our peak is read from
            double gemmPeak = GemmBench.Peak(vit.Config, b, Math.Min(2, r.GetValue(s.Seconds) / 2));
            var torch = InferBench.Median(torches);
            double? sharpMs = sharps.Count == 0 ? null : Timing.MedianOf(sharps.Select(f => f.MedianMilliseconds));
            if (sharps.Count > 0) Console.WriteLine($"TorchSharp backend: {sharps[0].Device}, {sharps[0].Precision}, LibTorch from {MLNet.MemoryTokens.TorchSharp.Native.TorchBackend.LoadedFrom}");
            BenchReport.Print([("images/s", b / sec, sharpMs is double ms ? b / (ms / 1000) : null, torch?.GetValueOrDefault("images_per_second"), true),
                          ("ms per step", sec * 1000, sharpMs, torch is null ? null : torch["seconds"] * 1000, false),
                          ("CPU ms per step", Timing.MedianOf(cpus) * 1000, null, torch?.TryGetValue("cpu_seconds", out var tc) == true ? tc * 1000 : null, false),
                          ("peak RSS MB", sharps.Count == 0 ? peaks.Max() : peaks[0], sharps.Count == 0 ? null : sharps.Max(f => f.PeakRssMb), torch?.GetValueOrDefault("peak_rss_mb"), false)]);
            if (n > 1 && sharps.Count == n)
                Console.WriteLine($"managed vs TorchSharp, median of the {n} rounds' ratios: {Timing.MedianOf(sharps.Select((f, k) => f.MedianMilliseconds / 1000 / ours[k])):F2}x");
            // a frozen-backbone step multiplies through every layer twice (forward, input gradients), full fine-tuning three times
            // (and weight gradients); the memory rows' own work is small beside it
            double flop = BenchArch.ForwardFlops(vit.Config) * b * (meth == "full" ? 3 : 2);
            Console.WriteLine($"step {flop / sec / 1e9:F1} GFLOP/s ({(meth == "full" ? 3 : 2)}x the forward's {BenchArch.ForwardFlops(vit.Config) / 1e9:F2} GFLOP per image): {flop / sec / 1e9 / gemmPeak:P0} of our GEMM peak, {gemmPeak:F1} GFLOP/s measured in this run");
            if (n > 1 && torches.Count == n)
                Console.WriteLine($"speed-up, median of the {n} rounds' ratios: {Timing.MedianOf(torches.Select((t, k) => t["seconds"] / ours[k])):F2}x");
            return 0;
        }));
        return cmd;
    }
}
