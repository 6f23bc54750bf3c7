using System.CommandLine;
using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench e2e</c>: image files to predictions (decoding on background threads overlapped with the forward, as
/// <c>mmt predict</c> does) against the forward alone on the same batches; and our single-thread JPEG decode against
/// libjpeg-turbo's <c>djpeg</c> on the same files.</summary>
internal static class E2eBench
{
    public static Command Create()
    {
        var cmd = new Command("e2e", "Files-to-predictions images/s against forward-only images/s, and our JPEG decode per core against djpeg.");
        var s = BenchCommand.AddShared(cmd);
        var images = new Option<string>("--images") { Description = "Folder (or file) of JPEG images.", Required = true };
        var repeatTo = new Option<int>("--repeat-to") { Description = "Repeat the file list up to this many files (0: as found).", DefaultValueFactory = _ => 200 };
        var model = new Option<string?>("--model") { Description = "Checkpoint (default: random weights with --arch's shape and ViT preprocessing)." };
        var arch = BenchArch.Option();
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var size = new Option<int>("--image-size") { DefaultValueFactory = _ => 224 };
        var djpeg = new Option<string>("--djpeg") { Description = "libjpeg-turbo's djpeg (Debian libjpeg-turbo-progs).", DefaultValueFactory = _ => "djpeg" };
        var noDjpeg = new Option<bool>("--no-djpeg") { Description = "Skip the djpeg comparison." };
        cmd.Options.Add(images); cmd.Options.Add(repeatTo); cmd.Options.Add(model); cmd.Options.Add(arch); cmd.Options.Add(batch);
        cmd.Options.Add(size); cmd.Options.Add(djpeg); cmd.Options.Add(noDjpeg);
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            int threads = r.GetValue(s.Threads), b = r.GetValue(batch), px = r.GetValue(size);
            double seconds = r.GetValue(s.Seconds);
            string a = r.GetValue(arch)!;
            Limits.Check("The batch size", b, 1, Limits.MaxBatch);
            Parallelism.Threads = threads;
            // JPEGs only: the shared photos sit beside PPM copies of their pixels, which would skew a JPEG figure
            var unique = ImageFiles.Expand([r.GetValue(images)!]).Where(f => Path.GetExtension(f).ToLowerInvariant() is ".jpg" or ".jpeg").ToList();
            if (unique.Count == 0) throw new ArgumentException($"No JPEG files (.jpg, .jpeg) in '{r.GetValue(images)}'.");
            int n = Math.Max(unique.Count, r.GetValue(repeatTo));
            var files = Enumerable.Range(0, n).Select(i => unique[i % unique.Count]).ToList();
            var backbone = r.GetValue(model) is string m
                ? Backbone.Load(m, new BackboneOptions { ImageSize = px })
                : new Backbone(VisionTransformer.CreateRandom(BenchArch.Config(a, px), seed: 1), new PreprocessConfig { InputSize = px }, a, a);
            var vit = backbone.Model;
            Console.WriteLine($"End to end, {(r.GetValue(model) is string mm ? Path.GetFileName(mm) : a)} ({BenchArch.Describe(vit.Config)}) image {px}, batch {b}, {threads} threads, {Environment.ProcessorCount} cores; {files.Count} files ({unique.Count} distinct) from {r.GetValue(images)}");

            // forward only: the same batch sizes as the files give, on preprocessed inputs already in memory
            var x = backbone.PreprocessImages(Enumerable.Range(0, b).Select(i => ImageDecoder.Load(unique[i % unique.Count])).ToList());
            double forwardSec = Timing.Median(() => vit.Forward(x), seconds);
            double forwardRate = b / forwardSec;

            // files to predictions: decode + preprocess on background threads a few batches ahead, forward, top-1
            int failures = 0;
            double e2eSec = Timing.Median(() =>
            {
                failures = 0;
                using var batches = new ImageFileBatches(files, backbone.Preprocess, b);
                foreach (var bt in batches.Read())
                {
                    failures += bt.Errors.Count(e => e is not null);
                    if (bt.Images is null) continue;
                    var logits = vit.Forward(bt.Images);
                    int classes = logits.Shape[1];
                    for (int j = 0; j < bt.Decoded.Count; j++) Classification.TopK(Classification.Softmax(logits.Data.AsSpan(j * classes, classes)), 1);
                }
            }, seconds);
            if (failures > 0) Console.WriteLine($"warning: {failures} of the files could not be decoded (left out, as mmt predict does)");
            double e2eRate = files.Count / e2eSec;
            Console.WriteLine($"forward only      {forwardRate,8:F1} img/s  (batch {b} in memory)");
            Console.WriteLine($"files→predictions {e2eRate,8:F1} img/s  ({files.Count} files, decode overlapped with the forward)");
            Console.WriteLine($"ratio             {e2eRate / forwardRate,8:F2}  (target ≥ 0.80)");

            // decode per core: ours on one thread (file read, checks and decode, no resize) against djpeg, one process per file
            var jpegs = unique;
            double oursSec = Timing.Median(() => { foreach (var f in jpegs) ImageDecoder.Load(f, applyExifOrientation: false); }, seconds);
            Console.WriteLine($"JPEG decode, ours, 1 thread        {jpegs.Count / oursSec,8:F1} img/s  ({oursSec * 1000 / jpegs.Count:F2} ms per image, {jpegs.Count} files)");
            if (r.GetValue(noDjpeg)) return 0;
            string tool = r.GetValue(djpeg)!;
            // the process start-up (djpeg -version: loads and exits) is subtracted per file: what remains is djpeg's decode
            double startup = Timing.Median(() => RunDjpeg(tool, null), Math.Min(seconds, 2));
            double djpegSec = Timing.Median(() => { foreach (var f in jpegs) RunDjpeg(tool, f); }, seconds);
            double decodeOnly = Math.Max(1e-9, djpegSec - jpegs.Count * startup);
            Console.WriteLine($"JPEG decode, djpeg, 1 process/file {jpegs.Count / djpegSec,8:F1} img/s  ({djpegSec * 1000 / jpegs.Count:F2} ms per image, process start-up included)");
            Console.WriteLine($"JPEG decode, djpeg, start-up out   {jpegs.Count / decodeOnly,8:F1} img/s  ({decodeOnly * 1000 / jpegs.Count:F2} ms per image; start-up {startup * 1000:F2} ms, djpeg -version)");
            Console.WriteLine($"ours / djpeg per core              {decodeOnly / oursSec,8:F2}  (start-up out; {djpegSec / oursSec:F2} with it; target ≥ 0.70)");
            return 0;
        }));
        return cmd;
    }

    /// <summary>djpeg on <paramref name="file"/> to /dev/null (PPM), or <c>djpeg -version</c> when null (the start-up alone).</summary>
    static void RunDjpeg(string tool, string? file)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (file is null) psi.ArgumentList.Add("-version");
        else { psi.ArgumentList.Add("-outfile"); psi.ArgumentList.Add("/dev/null"); psi.ArgumentList.Add(file); }
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Exception e) { throw new InvalidOperationException($"Could not start '{tool}' ({e.Message}); install libjpeg-turbo-progs or pass --no-djpeg."); }
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} failed on '{file}' (exit {p.ExitCode}): {err.Result.Trim()}");
    }
}
