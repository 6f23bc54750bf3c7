using System.CommandLine;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench gemm</c>: SGEMM at ViT-Ti/16's linear-layer shapes, ours (packed per call and once) and PyTorch's.</summary>
internal static class GemmBench
{
    public static Command Create()
    {
        var cmd = new Command("gemm", "SGEMM GFLOP/s at ViT-Ti/16's linear-layer shapes (batch 32), y = x·Wᵀ.");
        var s = BenchCommand.AddShared(cmd);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            Parallelism.Threads = r.GetValue(s.Threads);
            double seconds = r.GetValue(s.Seconds);
            var torch = r.GetValue(s.NoTorch) ? [] : BenchCommand.RunTorch(r, s, ["gemm"]);
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
            BenchReport.Print(rows);
            return 0;
        }));
        return cmd;
    }
}
