using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Onnx;
using MLNet.MemoryTokens.Tuning;
using OnnxRuntimeSample;

// dotnet run --project samples/OnnxRuntime -c Release -- predict <model.onnx> <image> <output>
// dotnet run --project samples/OnnxRuntime -c Release -- bench-infer <model.onnx> [--batch 32] [--image-size 224] [--threads 2] [--seconds 5]
//     (the ONNX Runtime side of `mmt bench infer`: one JSON line, timed as the engine's side is)
// dotnet run --project samples/OnnxRuntime -c Release -- bench-multitask [--tasks 3] [--tokens 5] [--batch 32] [--image-size 224]
//     [--threads 2] [--seconds 10] [--model checkpoint.safetensors]
// dotnet run --project samples/OnnxRuntime -c Release -- agreement --model checkpoint --adapter folder --data spec [--limit N] [--threads 2]
//     (ONNX Runtime's dynamically quantised export of an adapter against ours in fp32: the ONNX Runtime side of `mmt bench agreement`)
if (args.Length == 4 && args[0] == "predict")
{
    Console.WriteLine(Consumer.Predict(args[1], args[2], args[3]));
    return 0;
}
if (args.Length >= 1 && args[0] == "bench-multitask") return MultiTaskBench.Run(args[1..]);
if (args.Length >= 2 && args[0] == "bench-infer") return InferBench.Run(args[1], args[2..]);
if (args.Length >= 1 && args[0] == "agreement") return Agreement.Run(args[1..]);
Console.Error.WriteLine("usage: predict <model.onnx> <image> <output> | bench-multitask [--tasks 3] [--tokens 5] [--batch 32] [--image-size 224] [--threads 2] [--seconds 10] [--model path]"
    + " | bench-infer <model.onnx> [--batch 32] [--image-size 224] [--threads 2] [--seconds 5]"
    + " | agreement --model checkpoint --adapter folder --data spec [--limit N] [--threads 2]");
return 2;

/// <summary>The masked multi-task pass (original head + T tasks) in ONNX Runtime against the engine's <see cref="MultiTaskVit"/>,
/// both on the same threads, timed in turn call by call (the median of per-pair ratios holds on a shared machine).</summary>
static class MultiTaskBench
{
    public static int Run(string[] args)
    {
        string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int tasks = int.Parse(Arg("--tasks") ?? "3"), tokens = int.Parse(Arg("--tokens") ?? "5"), batch = int.Parse(Arg("--batch") ?? "32");
        int size = int.Parse(Arg("--image-size") ?? "224"), threads = int.Parse(Arg("--threads") ?? "2");
        double seconds = double.Parse(Arg("--seconds") ?? "10", System.Globalization.CultureInfo.InvariantCulture);
        Parallelism.Threads = threads;
        Backbone backbone;
        if (Arg("--model") is string path) backbone = Backbone.Load(path, new BackboneOptions { ImageSize = size });
        else
        {
            var vit = VisionTransformer.CreateRandom(new VitConfig { ImageSize = size }, seed: 1);   // ViT-Ti/16's shape: the same compute
            backbone = new Backbone(vit, new PreprocessConfig { InputSize = size }, "random ViT-Ti/16", Backbone.ComputeFingerprint(vit.Parameters));
        }
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = tokens, Masked = true };
        var labels = Enumerable.Range(0, 10).Select(c => c.ToString()).ToArray();
        var adapters = Enumerable.Range(0, tasks).Select(i => ($"task{i}", Adapter.From(tuning.CreateModel(backbone.Model, 10, i), backbone, tuning, labels, backbone.Preprocess))).ToList();
        var ours = new MultiTaskVit(backbone, adapters);
        string file = Path.Combine(Path.GetTempPath(), $"mmt-bench-multitask-{Environment.ProcessId}.onnx");
        string plainFile = Path.ChangeExtension(file, ".backbone.onnx");
        try
        {
            OnnxExport.Save(file, backbone, adapters);
            OnnxExport.Save(plainFile, backbone);
            var sessionOptions = new SessionOptions
            {
                IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            using var session = new InferenceSession(file, sessionOptions);
            using var plainSession = new InferenceSession(plainFile, sessionOptions);
            var x = new Tensor([batch, 3, size, size]);
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
            using var input = OrtValue.CreateTensorValueFromMemory(x.Data, [batch, 3, size, size]);
            var outputNames = session.OutputNames.ToArray();
            using var runOptions = new RunOptions();
            float[][] Onnx()
            {
                using var results = session.Run(runOptions, [OnnxExport.InputName], [input], outputNames);
                return results.Select(r => r.GetTensorDataAsSpan<float>().ToArray()).ToArray();
            }
            void OnnxBackbone()
            {
                using var results = plainSession.Run(runOptions, [OnnxExport.InputName], [input], [OnnxExport.BackboneOutput]);
            }
            // the same numbers first: the comparison is of equal work
            var (original, taskLogits) = ours.Forward(x);
            var theirs = Onnx();
            double diff = new[] { original!.Data }.Concat(taskLogits.Select(t => t.Data)).Zip(theirs)
                .Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
            var (a, b, ratio) = Paired(() => ours.Forward(x), () => Onnx(), seconds);
            var (pa, pb, pratio) = Paired(() => backbone.Model.Forward(x), OnnxBackbone, seconds / 2);
            Console.WriteLine($"original head + {tasks} masked tasks (m={tokens}) in one pass, ViT D={backbone.Model.Config.Dim} depth={backbone.Model.Config.Depth} image {size}, batch {batch}, {threads} threads");
            Console.WriteLine($"{Environment.ProcessorCount} cores; ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version}; max |ours − ONNX Runtime| over all logits {diff:G3}");
            Console.WriteLine($"ours (MultiTaskVit)        {a * 1000,8:F1} ms  {batch / a,7:F1} img/s");
            Console.WriteLine($"ONNX Runtime (export)      {b * 1000,8:F1} ms  {batch / b,7:F1} img/s");
            Console.WriteLine($"ONNX Runtime time / ours   {ratio,8:F3}x  (median of per-pair ratios; > 1: ours is faster)");
            Console.WriteLine($"for reference, the backbone alone (its head only): ours {pa * 1000:F1} ms, ONNX Runtime {pb * 1000:F1} ms, ratio {pratio:F3}x");
            Console.WriteLine($"cost of the {tasks} tasks on top of the backbone: ours {a / pa:F3}x, ONNX Runtime {b / pb:F3}x");
            return 0;
        }
        finally { File.Delete(file); File.Delete(plainFile); }
    }

    /// <summary>a and b in turn after a warm-up of both: the median of each and the median of the per-pair ratios b/a.</summary>
    static (double A, double B, double Ratio) Paired(Action a, Action b, double minSeconds)
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
        static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
        return (Median(ta), Median(tb), Median(ratios));
    }
}

/// <summary>The same adapter exported in fp32 and in ONNX Runtime's dynamic-quantisation form, run by ONNX Runtime on a data set
/// prepared by the engine: each export's top-1 agreement with the engine's fp32, accuracy and speed.</summary>
static class Agreement
{
    public static int Run(string[] args)
    {
        string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        string model = Arg("--model") ?? throw new ArgumentException("--model is required."), dir = Arg("--adapter") ?? throw new ArgumentException("--adapter is required.");
        string spec = Arg("--data") ?? throw new ArgumentException("--data is required.");
        int threads = int.Parse(Arg("--threads") ?? "2"), batch = 32;
        Parallelism.Threads = threads;
        var adapter = Adapter.Load(dir);
        var backbone = Backbone.Load(model, new BackboneOptions { ImageSize = adapter.Config.ImageSize, DropHead = true });
        var ds = MLNet.MemoryTokens.Data.ImageDatasets.Open(spec);
        if (Arg("--limit") is string l) ds = MLNet.MemoryTokens.Data.ImageDatasets.Take(ds, int.Parse(l));
        var data = MLNet.MemoryTokens.Data.PreparedImages.From(ds, adapter.Config.Preprocess with { InputSize = adapter.Config.ImageSize });
        var batches = Enumerable.Range(0, (data.Count + batch - 1) / batch)
            .Select(b => data.Batch(Enumerable.Range(b * batch, Math.Min(batch, data.Count - b * batch)).ToArray())).ToList();
        var tuned = adapter.CreateModel(backbone, dir);
        var ours = batches.SelectMany(x => tuned.Forward(x, keepForBackward: false).Data).ToArray();
        int classes = adapter.Config.ClassLabels.Length;
        int Top1(float[] logits, int i) => Classification.TopK(logits.AsSpan(i * classes, classes), 1)[0];
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        foreach (bool quantized in new[] { false, true })
        {
            string file = Path.Combine(Path.GetTempPath(), $"mmt-agreement-{Environment.ProcessId}-{(quantized ? "int8" : "fp32")}.onnx");
            try
            {
                OnnxExport.Save(file, backbone, [("task", adapter)], new OnnxExportOptions { QuantizeDynamic = quantized });
                using var session = new InferenceSession(file, options);
                using var run = new RunOptions();
                var logits = new List<float>();
                var sw = new Stopwatch();
                foreach (var x in batches)
                {
                    using var value = OrtValue.CreateTensorValueFromMemory(x.Data, [x.Shape[0], 3, x.Shape[2], x.Shape[3]]);
                    sw.Start();
                    using var r = session.Run(run, [OnnxExport.InputName], [value], ["task"]);
                    sw.Stop();
                    logits.AddRange(r[0].GetTensorDataAsSpan<float>().ToArray());
                }
                var theirs = logits.ToArray();
                int agree = 0, right = 0;
                for (int i = 0; i < data.Count; i++)
                {
                    if (Top1(theirs, i) == Top1(ours, i)) agree++;
                    if (Top1(theirs, i) == data.Labels[i]) right++;   // the adapter's classes in the data set's order (as evaluate counts)
                }
                Console.WriteLine($"ONNX Runtime {(quantized ? "int8 (dynamic quantisation)" : "fp32")}: top-1 agreement with ours in fp32 {agree}/{data.Count} = {100.0 * agree / data.Count:F2} %, " +
                    $"accuracy {100.0 * right / data.Count:F2} %, {data.Count / sw.Elapsed.TotalSeconds:F1} img/s");
            }
            finally { File.Delete(file); }
        }
        return 0;
    }
}

/// <summary>The ONNX Runtime anchor of <c>mmt bench infer</c>: a model's forward on a random batch, CPU provider, all graph
/// optimisations, the given intra-op threads, sequential execution; timed by the engine's rule (the median of repeated calls after
/// a warm-up of at least 2 calls and 2 seconds, the peak-RSS counter reset before the warm-up). Prints one JSON line. Runs in its
/// own process, so its peak memory is its own.</summary>
static class InferBench
{
    public static int Run(string model, string[] args)
    {
        string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int batch = int.Parse(Arg("--batch") ?? "32"), size = int.Parse(Arg("--image-size") ?? "224"), threads = int.Parse(Arg("--threads") ?? "2");
        double seconds = double.Parse(Arg("--seconds") ?? "5", System.Globalization.CultureInfo.InvariantCulture);
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(model, options);
        string input = session.InputNames[0];
        var x = new float[batch * 3 * size * size];
        var rng = new Random(1);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        using var value = OrtValue.CreateTensorValueFromMemory(x, [batch, 3, size, size]);
        var outputs = session.OutputNames.ToArray();
        using var run = new RunOptions();
        void Forward() { using var r = session.Run(run, [input], [value], outputs); }
        ResetPeakRss();
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 2 || warm.Elapsed.TotalSeconds < 2; i++) Forward();
        var (times, cpus) = (new List<double>(), new List<double>());
        var proc = Process.GetCurrentProcess();
        var total = Stopwatch.StartNew();
        do
        {
            proc.Refresh();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            Forward();
            times.Add(sw.Elapsed.TotalSeconds);
            proc.Refresh();
            cpus.Add((proc.TotalProcessorTime - cpu0).TotalSeconds);
        } while (total.Elapsed.TotalSeconds < seconds || times.Count < 3);
        static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }
        double sec = Median(times);
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $$"""{"bench": "infer", "runtime": "onnxruntime {{typeof(InferenceSession).Assembly.GetName().Version}}", "batch": {{batch}}, "image_size": {{size}}, "threads": {{threads}}, "seconds": {{sec}}, "cpu_seconds": {{Median(cpus)}}, "images_per_second": {{batch / sec}}, "peak_rss_mb": {{PeakRssMb()}}}"""));
        return 0;
    }

    static void ResetPeakRss()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static double PeakRssMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:")) return double.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        return Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
    }
}
