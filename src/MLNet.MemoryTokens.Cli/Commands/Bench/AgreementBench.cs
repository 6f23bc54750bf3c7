using System.CommandLine;
using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

#pragma warning disable MMT0001   // the benchmarks measure the experimental int8 backbone too

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench agreement</c>: the int16 or int8 backbone against fp32 on the same real images (a data set, or image files with the
/// checkpoint's own head): top-1 agreement, accuracy of each when labels are known, the largest logit difference, the
/// disagreements with fp32's top-1/top-2 margin, and both speeds over the same decoded batches.</summary>
internal static class AgreementBench
{
    public static Command Create()
    {
        var cmd = new Command("agreement", "int16 / int8 backbone against fp32 on real images: top-1 agreement, accuracy, logit difference and speed.");
        var precision = new Option<string>("--precision") { Description = "int16 (default) or int8.", DefaultValueFactory = _ => "int16" };
        precision.AcceptOnlyFromAmong("int16", "int8");
        cmd.Options.Add(precision);
        var model = new Option<string>("--model", "-m") { Description = "Checkpoint (safetensors / npz / Hugging Face folder).", Required = true };
        var adapter = new Option<string?>("--adapter", "-a") { Description = "Adapter folder: its task's logits (else the checkpoint's own head)." };
        var data = new Option<string?>("--data", "-d") { Description = "Data set (as for evaluate, e.g. DIR:test); else the image files given." };
        var limit = DataOptions.Limit();
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int?>("--image-size") { Description = "Input size without an adapter (default: the checkpoint's)." };
        var threads = new Option<int>("--threads") { Description = "Compute threads.", DefaultValueFactory = _ => 2 };
        var images = new Argument<string[]>("images") { Description = "Image files or folders (without --data).", Arity = ArgumentArity.ZeroOrMore };
        cmd.Options.Add(model); cmd.Options.Add(adapter); cmd.Options.Add(data); cmd.Options.Add(limit); cmd.Options.Add(batch);
        cmd.Options.Add(size); cmd.Options.Add(threads); cmd.Arguments.Add(images);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            if (!QuantizedGemm.IsSupported) throw new PlatformNotSupportedException("Integer inference needs AVX-512BW, which this CPU (or runtime) does not offer.");
            var integer = r.GetValue(precision) == "int8" ? InferencePrecision.Int8 : InferencePrecision.Int16;
            string name = integer.ToString().ToLowerInvariant();
            Parallelism.Threads = r.GetValue(threads);
            int b = r.GetValue(batch);
            Limits.Check("--batch", b, 1, Limits.MaxBatch);
            Backbone backbone;
            Func<Func<Tensor, Tensor>> build;   // the model at the backbone's current precision (a full fine-tune copies it when built)
            string head;
            if (r.GetValue(adapter) is string dir)
            {
                var a = CommonOptions.LoadAdapter(r, dir);
                var bb = Backbone.Load(r.GetValue(model)!, new BackboneOptions { ImageSize = a.Config.ImageSize, DropHead = true });
                backbone = new Backbone(bb.Model, a.Config.Preprocess with { InputSize = a.Config.ImageSize }, bb.Source, bb.Fingerprint);
                build = () => { var tuned = a.CreateModel(bb, dir); return x => tuned.Forward(x, keepForBackward: false); };
                head = $"{a.Config.Method} adapter {Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))}";
            }
            else
            {
                backbone = Backbone.Load(r.GetValue(model)!, new BackboneOptions { ImageSize = r.GetValue(size) });
                if (backbone.Model.Config.NumClasses == 0) throw new InvalidOperationException("The checkpoint has no classification head; give --adapter.");
                var vitModel = backbone.Model;
                build = () => vitModel.Forward;
                head = "the checkpoint's head";
            }
            var (batches, labels) = Load(r.GetValue(data), r.GetValue(limit), r.GetValue(images) ?? [], backbone, b);
            int count = batches.Sum(t => t.Shape[0]);
            if (count == 0) throw new ArgumentException("No images: give --data or image files.");
            var vit = backbone.Model;
            Console.WriteLine($"{count} images at {vit.Config.ImageSize}², batch {b}, {Parallelism.Threads} threads, {head}");

            vit.InferencePrecision = InferencePrecision.Fp32;
            var forward = build();
            forward(batches[0]);   // warm-up: packing, buffers, JIT
            var (fp32, fp32Seconds) = Run(forward, batches);
            vit.InferencePrecision = integer;
            forward = build();
            forward(batches[0]);
            var (quantized, quantizedSeconds) = Run(forward, batches);
            vit.InferencePrecision = InferencePrecision.Fp32;

            int classes = fp32.Length / count, agree = 0, right32 = 0, right8 = 0;
            double maxDiff = 0;
            var disagreements = new List<string>();
            for (int i = 0; i < count; i++)
            {
                var l32 = fp32.AsSpan(i * classes, classes); var l8 = quantized.AsSpan(i * classes, classes);
                int t32 = Classification.TopK(l32.ToArray(), 2)[0], t8 = Classification.TopK(l8.ToArray(), 1)[0];
                for (int c = 0; c < classes; c++) maxDiff = Math.Max(maxDiff, Math.Abs(l32[c] - l8[c]));
                if (t32 == t8) agree++;
                else
                {
                    var top2 = Classification.TopK(l32.ToArray(), 2);
                    disagreements.Add($"image {i}: fp32 class {t32}, {name} class {t8}; fp32 margin between its top two {l32[top2[0]] - l32[top2[1]]:F3} logits");
                }
                if (labels is not null) { if (t32 == labels[i]) right32++; if (t8 == labels[i]) right8++; }
            }
            Console.WriteLine($"top-1 agreement {name} vs fp32: {agree}/{count} = {100.0 * agree / count:F2} %   largest |logit difference| {maxDiff:F4}");
            if (labels is not null) Console.WriteLine($"accuracy: fp32 {100.0 * right32 / count:F2} %, {name} {100.0 * right8 / count:F2} %");
            if (count >= 256)
                Console.WriteLine($"speed over the same decoded batches: fp32 {count / fp32Seconds:F1} img/s, {name} {count / quantizedSeconds:F1} img/s ({fp32Seconds / quantizedSeconds:F2}x)");
            else Console.WriteLine($"({count} images: too few to time; bench infer times each precision)");
            foreach (var line in disagreements.Take(20)) Console.WriteLine("  " + line);
            if (disagreements.Count > 20) Console.WriteLine($"  … {disagreements.Count - 20} more");
            return 0;
        }));
        return cmd;
    }

    static (float[] Logits, double Seconds) Run(Func<Tensor, Tensor> forward, List<Tensor> batches)
    {
        var all = new List<float>();
        var sw = Stopwatch.StartNew();
        double seconds = 0;
        foreach (var x in batches)
        {
            sw.Restart();
            var y = forward(x);
            seconds += sw.Elapsed.TotalSeconds;
            all.AddRange(y.Data.AsSpan(0, y.Length).ToArray());
        }
        return (all.ToArray(), seconds);
    }

    /// <summary>Decoded, preprocessed batches (and labels from a data set), so both precisions see exactly the same tensors.</summary>
    static (List<Tensor> Batches, int[]? Labels) Load(string? spec, int? limit, string[] files, Backbone backbone, int batch)
    {
        var batches = new List<Tensor>();
        if (spec is not null)
        {
            if (files.Length > 0) throw new ArgumentException("Give --data or image files, not both.");
            var prepared = PreparedImages.From(DataOptions.Open(spec, limit), backbone.Preprocess);
            foreach (var w in prepared.Warnings) Console.Error.WriteLine($"warning: {w}");
            for (int s = 0; s < prepared.Count; s += batch)
                batches.Add(prepared.Batch(Enumerable.Range(s, Math.Min(batch, prepared.Count - s)).ToArray()));
            return (batches, prepared.Labels);
        }
        var list = ImageFiles.Expand(files);
        if (limit is int n) list = list.Take(n).ToList();
        using var reader = new ImageFileBatches(list, backbone.Preprocess, batch);
        foreach (var bt in reader.Read())
        {
            for (int i = 0; i < bt.Files.Count; i++) if (bt.Errors[i] is string e) throw new InvalidDataException(e);
            if (bt.Images is not null) batches.Add(bt.Images.Clone());
        }
        return (batches, null);
    }
}
