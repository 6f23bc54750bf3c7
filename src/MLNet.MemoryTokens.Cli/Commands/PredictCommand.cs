using System.CommandLine;
using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt predict</c>: top-k classes of each image under a pretrained checkpoint.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var labels = new Option<FileInfo?>("--labels") { Description = "Class names, one per line in class-index order." };
        var topK = new Option<int>("--top-k") { Description = "How many classes to list per image.", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass.", DefaultValueFactory = _ => 32 };
        var imageSize = new Option<int?>("--image-size") { Description = "Run at this input size (position embedding resampled)." };
        var adapter = new Option<string?>("--adapter", "-a") { Description = "Adapter folder from 'mmt train': predict its task instead of the checkpoint's head (labels from the adapter)." };
        var json = CommonOptions.Json();
        var threads = CommonOptions.Threads();
        var images = new Argument<string[]>("images") { Description = "Image files or folders (JPEG, PNG, BMP, PPM/PGM).", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("predict", "Print the top-k classes of each image.") { model, adapter, labels, topK, batch, imageSize, json, threads, images };
        var backend = BackendOptions.AddTo(cmd);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            CommonOptions.ApplyThreads(r.GetValue(threads));
            var compute = backend.Resolve(r, r.GetValue(threads));
            int k = r.GetValue(topK);
            if (k < 1) throw new ArgumentException($"--top-k must be at least 1, got {k}.");
            int batchSize = r.GetValue(batch);
            Limits.Check("--batch", batchSize, 1, Limits.MaxBatch);
            var files = ImageFiles.Expand(r.GetValue(images)!);
            if (files.Count == 0) throw new ArgumentException("No image files found in the given folders.");
            if (r.GetValue(adapter) is string dir)
            {
                var a = CommonOptions.LoadAdapter(r, dir);
                var bb = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = a.Config.ImageSize, DropHead = true }));
                var tuned = a.CreateModel(bb, dir, compute: compute);
                using var _ = tuned as IDisposable;
                var names = r.GetValue(labels) is FileInfo f ? LoadLabels(f, a.Config.ClassLabels.Length) : a.Config.ClassLabels;
                return Predict(new Backbone(bb.Model, a.Config.Preprocess with { InputSize = a.Config.ImageSize }, bb.Source, bb.Fingerprint),
                    x => tuned.Forward(x, keepForBackward: false), files, names, k, batchSize, r.GetValue(json));
            }
            var backbone = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = r.GetValue(imageSize) }));
            if (backbone.Model.Config.NumClasses == 0) throw new InvalidOperationException("The checkpoint has no classification head; give --adapter to predict a trained task.");
            var classNames = LoadLabels(r.GetValue(labels), backbone.Model.Config.NumClasses);
            if (compute.IsManaged)
            {
                backbone.Model.InferencePrecision = compute.InferencePrecision;
                return Predict(backbone, backbone.Model.Forward, files, classNames, k, batchSize, r.GetValue(json));
            }
            using var onDevice = MLNet.MemoryTokens.TorchSharp.TorchSharpBackend.Backbone(backbone.Model, compute);
            return Predict(backbone, onDevice.Predict, files, classNames, k, batchSize, r.GetValue(json));
        }));
        return cmd;
    }

    internal static string[]? LoadLabels(FileInfo? file, int classes)
    {
        if (file is null) return null;
        if (!file.Exists) throw new FileNotFoundException($"Labels file '{file.FullName}' does not exist.", file.FullName);
        var lines = File.ReadAllLines(file.FullName).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (classes > 0 && lines.Length != classes)
            throw new ArgumentException($"Labels file '{file.FullName}' has {lines.Length} names but the model has {classes} classes.");
        return lines;
    }

    /// <summary>Decodes the files on background threads (a batch or two ahead of the forward passes), preprocesses with the
    /// backbone's config, and prints the top k of <paramref name="logitsOf"/>.</summary>
    static int Predict(Backbone backbone, Func<Tensor, Tensor> logitsOf, List<string> files, IReadOnlyList<string>? labels, int k, int batchSize, bool json)
    {
        int failures = 0;
        if (!json) Console.WriteLine($"{"file",-40} {"rank",4} {"class",6} {"probability",11}  label");
        using var batches = new ImageFileBatches(files, backbone.Preprocess, batchSize);
        foreach (var batch in batches.Read())
        {
            for (int i = 0; i < batch.Files.Count; i++)
            {
                if (batch.Errors[i] is string error) { failures++; Console.Error.WriteLine($"error: {error}"); }
                else if (batch.Warnings[i] is string warning) Console.Error.WriteLine($"warning: {batch.Files[i]}: {warning}");
            }
            if (batch.Images is null) continue;
            var logits = logitsOf(batch.Images);
            int classes = logits.Shape[1];
            for (int j = 0; j < batch.Decoded.Count; j++)
            {
                var probs = Classification.Softmax(logits.Data.AsSpan(j * classes, classes));
                var top = Classification.TopK(probs, k);
                string file = batch.Files[batch.Decoded[j]];
                if (json)
                    Console.WriteLine(JsonSerializer.Serialize(new
                    {
                        file,
                        top = top.Select(t => new { index = t, label = labels?[t] ?? $"class {t}", probability = probs[t] }),
                    }));
                else
                    for (int rank = 0; rank < top.Length; rank++)
                        Console.WriteLine($"{(rank == 0 ? Shorten(file, 40) : ""),-40} {rank + 1,4} {top[rank],6} {probs[top[rank]],11:F4}  {labels?[top[rank]] ?? ""}");
            }
        }
        if (failures > 0) Console.Error.WriteLine($"error: {failures} of {files.Count} images could not be read (each named above); the others were predicted.");
        return failures == 0 ? 0 : 1;
    }

    static string Shorten(string path, int width) => path.Length <= width ? path : "…" + path[^(width - 1)..];
}
