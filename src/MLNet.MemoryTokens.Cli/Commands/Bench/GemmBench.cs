using System.CommandLine;
using System.Diagnostics;
using System.Runtime.Intrinsics;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench gemm</c>: SGEMM at a ViT's linear-layer shapes, ours (packed per call and once) and PyTorch's, and the
/// CPU's fused multiply-add peak (registers only): the ceiling every other figure is a fraction of.</summary>
internal static class GemmBench
{
    public static Command Create()
    {
        var cmd = new Command("gemm", "SGEMM GFLOP/s at a ViT's linear-layer shapes (batch 32), y = x·Wᵀ, and the CPU's FMA peak.");
        var s = BenchCommand.AddShared(cmd);
        var arch = BenchArch.Option();
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        cmd.Options.Add(arch); cmd.Options.Add(batch); cmd.Options.Add(size);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            Parallelism.Threads = r.GetValue(s.Threads);
            double seconds = r.GetValue(s.Seconds);
            string a = r.GetValue(arch)!;
            int b = r.GetValue(batch), px = r.GetValue(size);
            var config = BenchArch.Config(a, px);
            var torch = r.GetValue(s.NoTorch) ? [] : BenchCommand.RunTorch(r, s, ["gemm", "--arch", a, "--batch", b.ToString(), "--image-size", px.ToString()]);
            Console.WriteLine($"SGEMM, {a} ({BenchArch.Describe(config)}) linear layers at batch {b}, image {px}, {Parallelism.Threads} threads, kernel {Gemm.DefaultKernel}; GFLOP/s, ours with weights packed per call (as PyTorch) and packed once (as our frozen backbone)");
            var rows = new List<(string, double, double?, bool)>();
            foreach (var (name, m, n, k) in BenchArch.LinearShapes(config, b))
            {
                var (perCall, once) = Rate(m, n, k, seconds);
                double? theirs = torch.FirstOrDefault(t => t.TryGetValue("m", out var tm) && (int)tm == m && (int)t["n"] == n && (int)t["k"] == k)?["gflops"];
                rows.Add(($"{name} {m}x{n}x{k}", perCall, theirs, true));
                rows.Add(($"{name} packed once", once, theirs, true));
            }
            rows.Add(("FMA peak, registers only", FmaPeak(Parallelism.Threads, Math.Min(seconds, 2)), null, true));
            BenchReport.Print(rows);
            return 0;
        }));
        return cmd;
    }

    /// <summary>GFLOP/s of y = x·Wᵀ at [m, k]·[n, k]ᵀ: W packed per call, and packed once.</summary>
    public static (double PerCall, double Once) Rate(int m, int n, int k, double seconds)
    {
        var a = new float[(long)m * k]; var w = new float[(long)n * k]; var c = new float[(long)m * n];
        var rng = new Random(1);
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        for (int i = 0; i < w.Length; i++) w[i] = (float)rng.NextDouble() - 0.5f;
        double flop = 2.0 * m * n * k;
        double perCall = Timing.Median(() => Gemm.Multiply(false, true, m, n, k, a, k, w, k, c, n), seconds);
        var packed = Gemm.Pack(true, k, n, w, k);
        double once = Timing.Median(() => Gemm.Multiply(false, m, a, k, packed, c, n), seconds);
        return (flop / perCall / 1e9, flop / once / 1e9);
    }

    /// <summary>Our GEMM peak for a model: the best rate over its four linear-layer shapes with weights packed once (as the frozen
    /// backbone runs them), measured now — what "a fraction of the GEMM peak" divides by.</summary>
    public static double Peak(VitConfig config, int batch, double seconds)
    {
        double best = 0;
        foreach (var (_, m, n, k) in BenchArch.LinearShapes(config, batch))
        {
            var a = new float[(long)m * k]; var w = new float[(long)n * k]; var c = new float[(long)m * n];
            var rng = new Random(1);
            for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
            for (int i = 0; i < w.Length; i++) w[i] = (float)rng.NextDouble() - 0.5f;
            var packed = Gemm.Pack(true, k, n, w, k);
            best = Math.Max(best, 2.0 * m * n * k / Timing.Median(() => Gemm.Multiply(false, m, a, k, packed, c, n), seconds) / 1e9);
        }
        return best;
    }

    /// <summary>GFLOP/s of independent fused multiply-adds on registers, one loop per thread: the CPU's ceiling (no memory, no
    /// dependency stalls: 12 accumulators cover the FMA latency).</summary>
    public static double FmaPeak(int threads, double seconds)
    {
        const int Iterations = 1 << 22;
        bool wide = Vector512.IsHardwareAccelerated;
        double flopPerCall = 2.0 * 12 * (wide ? 16 : 8) * Iterations;
        float sink = 0;
        void Loop()
        {
            float s = wide ? Fma512(Iterations) : Fma256(Iterations);
            Interlocked.Exchange(ref sink, s);
        }
        Loop();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        do
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ => Loop());
            times.Add(sw.Elapsed.TotalSeconds);
        } while (total.Elapsed.TotalSeconds < seconds || times.Count < 3);
        GC.KeepAlive(sink);
        return threads * flopPerCall / times.Min() / 1e9;   // the fastest round: the ceiling, not the typical
    }

    static float Fma512(int n)
    {
        var m = Vector512.Create(0.999999f); var add = Vector512.Create(1e-7f);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (int i = 0; i < n; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, add); a1 = Vector512.FusedMultiplyAdd(a1, m, add); a2 = Vector512.FusedMultiplyAdd(a2, m, add);
            a3 = Vector512.FusedMultiplyAdd(a3, m, add); a4 = Vector512.FusedMultiplyAdd(a4, m, add); a5 = Vector512.FusedMultiplyAdd(a5, m, add);
            a6 = Vector512.FusedMultiplyAdd(a6, m, add); a7 = Vector512.FusedMultiplyAdd(a7, m, add); a8 = Vector512.FusedMultiplyAdd(a8, m, add);
            a9 = Vector512.FusedMultiplyAdd(a9, m, add); a10 = Vector512.FusedMultiplyAdd(a10, m, add); a11 = Vector512.FusedMultiplyAdd(a11, m, add);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    static float Fma256(int n)
    {
        var m = Vector256.Create(0.999999f); var add = Vector256.Create(1e-7f);
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (int i = 0; i < n; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, add); a1 = Vector256.FusedMultiplyAdd(a1, m, add); a2 = Vector256.FusedMultiplyAdd(a2, m, add);
            a3 = Vector256.FusedMultiplyAdd(a3, m, add); a4 = Vector256.FusedMultiplyAdd(a4, m, add); a5 = Vector256.FusedMultiplyAdd(a5, m, add);
            a6 = Vector256.FusedMultiplyAdd(a6, m, add); a7 = Vector256.FusedMultiplyAdd(a7, m, add); a8 = Vector256.FusedMultiplyAdd(a8, m, add);
            a9 = Vector256.FusedMultiplyAdd(a9, m, add); a10 = Vector256.FusedMultiplyAdd(a10, m, add); a11 = Vector256.FusedMultiplyAdd(a11, m, add);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
