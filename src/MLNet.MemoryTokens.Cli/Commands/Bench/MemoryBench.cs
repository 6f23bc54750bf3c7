using System.CommandLine;
using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench memory</c>: resident host memory every so many training steps over a long run, on the managed engine
/// and (with <c>--backend torchsharp</c>) on the TorchSharp backend: flat when nothing leaks per step. Each step is what the
/// trainer does per batch — the method table's model and training step, the loss on the host, the optimizer (on the device
/// for TorchSharp) clearing, clipping and stepping.</summary>
internal static class MemoryBench
{
    public static Command Create()
    {
        var cmd = new Command("memory", "Host memory (resident set) over many training steps, per backend: flat when nothing leaks.");
        var s = BenchCommand.AddShared(cmd, torchSharp: true);
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with ViT-Ti/16's shape)." };
        var methods = TuningMethods.All.Select(m => m.Name).ToArray();
        var method = new Option<string>("--method") { Description = string.Join(" | ", methods), DefaultValueFactory = _ => "memory" };
        method.AcceptOnlyFromAmong(methods);
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 16 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 112 };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 500 };
        var every = new Option<int>("--every") { Description = "Record the resident set every this many steps.", DefaultValueFactory = _ => 50 };
        var skipManaged = new Option<bool>("--skip-managed") { Description = "Only the TorchSharp backend's trace." };
        cmd.Options.Add(model); cmd.Options.Add(method); cmd.Options.Add(tokens); cmd.Options.Add(batch); cmd.Options.Add(size); cmd.Options.Add(steps); cmd.Options.Add(every); cmd.Options.Add(skipManaged);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int b = r.GetValue(batch), px = r.GetValue(size), n = r.GetValue(steps), k = r.GetValue(every);
            if (n < 1 || k < 1 || b < 1) throw new ArgumentException("--steps, --every and --batch must be at least 1.");
            Parallelism.Threads = r.GetValue(s.Threads);
            var sharp = s.TorchSharp(r);
            var backbone = r.GetValue(model) is string path
                ? Backbone.Load(path, new BackboneOptions { ImageSize = px, DropHead = true })
                : new Backbone(VisionTransformer.CreateRandom(new VitConfig { ImageSize = px, NumClasses = 0 }, seed: 1), new PreprocessConfig { InputSize = px }, "random ViT-Ti/16 shape", "bench");
            var tuning = new TuningOptions { Method = TuningMethods.Find(r.GetValue(method)!)!.Method, MemoryTokens = r.GetValue(tokens), QueryDropout = 0 };
            Console.WriteLine($"host memory over {n} training steps of {r.GetValue(method)}, ViT D={backbone.Model.Config.Dim} depth={backbone.Model.Config.Depth} image {px}, batch {b}, {r.GetValue(s.Threads)} threads; resident set (MB) every {k} steps");
            var backends = new List<(string Name, ComputeOptions Compute)>();
            if (!r.GetValue(skipManaged)) backends.Add(("managed", ComputeOptions.Managed));
            if (sharp is not null) backends.Add(($"TorchSharp ({sharp.Device})", sharp));
            if (backends.Count == 0) throw new ArgumentException("--skip-managed needs --backend torchsharp.");
            foreach (var (name, compute) in backends)
            {
                var trace = Trace(backbone, tuning, compute, b, n, k);
                double first = trace[0].Mb, last = trace[^1].Mb, max = trace.Max(t => t.Mb);
                Console.WriteLine($"{name,-18} " + string.Join(" ", trace.Select(t => $"{t.Mb:F0}")));
                Console.WriteLine($"{"",-18} step {trace[0].Step} → {trace[^1].Step}: {last - first:+0;-0} MB (largest {max:F0} MB)");
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>The trainer's per-batch work on <paramref name="compute"/>'s backend, <paramref name="steps"/> times over four
    /// batches of random images; the resident set after a collection every <paramref name="every"/> steps.</summary>
    static List<(int Step, double Mb)> Trace(Backbone backbone, TuningOptions tuning, ComputeOptions compute, int batch, int steps, int every)
    {
        var methodCompute = TuningMethods.Compute(tuning.Method, compute);
        var data = MLNet.MemoryTokens.TorchSharp.Bench.TorchBenchmarks.RandomImages(backbone, batch * 4, classes: 10);   // the same images the TorchSharp benchmarks use
        var model = methodCompute.CreateModel(backbone.Model, tuning, 10, seed: 0);
        using var step = methodCompute.CreateTrainingStep(model, new StepContext(backbone, data, tuning, batch, default));
        var optimizer = step is IDeviceTrainingStep device ? device.CreateOptimizer(OptimizerKind.AdamW, 0.05f, 0.9f) : Optimizer.Create(OptimizerKind.AdamW, step.Parameters, 0.05f);
        var trace = new List<(int, double)>();
        try
        {
            for (int s = 1; s <= steps; s++)
            {
                var indices = Enumerable.Range((s % 4) * batch, batch).ToArray();
                var logits = step.Forward(indices);
                var dLogits = new Tensor(logits.Shape);
                CrossEntropy.Compute(logits.Data, indices.Select(i => data.Labels[i]).ToArray(), 10, 0.1f, dLogits.Data);
                optimizer.ClearGradients(step.Parameters);
                step.Backward(dLogits);
                optimizer.ClipGradients(step.Parameters, 1f);
                optimizer.Step(step.Parameters, 1e-4f);
                if (s % every == 0 || s == steps)   // and the last step, so a run shorter than --every still reports
                {
                    GC.Collect();
                    trace.Add((s, Process.GetCurrentProcess().WorkingSet64 / 1e6));
                }
            }
        }
        finally { (model as IDisposable)?.Dispose(); }
        return trace;
    }
}
