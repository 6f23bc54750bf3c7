using System.CommandLine;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench multitask</c>: the masked multi-task pass (original head + T tasks) against a plain forward, ours only.</summary>
internal static class MultiTaskBench
{
    public static Command Create()
    {
        var cmd = new Command("multitask", "One masked forward pass serving the original head plus T added tasks, against a plain forward (ours only).");
        var s = BenchCommand.AddShared(cmd);
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
            var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = m, Masked = true };
            var adapters = Enumerable.Range(0, t).Select(i => ($"task{i}", Adapter.From(tuning.CreateModel(vit, 10, i), backbone, tuning,
                Enumerable.Range(0, 10).Select(c => c.ToString()).ToArray(), backbone.Preprocess))).ToList();
            var multi = new MultiTaskVit(backbone, adapters);
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
}
