using System.CommandLine;
using System.Diagnostics;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary>The inference anchor: ONNX Runtime (Microsoft.ML.OnnxRuntime, CPU provider, all graph optimisations, the same
/// intra-op thread count, sequential) running the model PyTorch's exporter writes (reference/export_onnx.py with Debian's
/// python3-torch), in its own process (samples/OnnxRuntime's <c>bench-infer</c>), so its peak memory is its own.</summary>
/// <remarks>The CLI does not reference ONNX Runtime (a large native package a tool should not carry); the runner is the sample
/// that already shows ONNX Runtime consuming our exports, built on first use when it has not been.</remarks>
internal static class OnnxRuntimeAnchor
{
    internal sealed record Options(Option<bool> NoOrt, Option<string?> Runner);

    public static Options Add(Command cmd)
    {
        var o = new Options(
            new Option<bool>("--no-ort") { Description = "Skip ONNX Runtime." },
            new Option<string?>("--ort-runner") { Description = "Path of samples/OnnxRuntime's built OnnxRuntime.dll (default: found from the current folder upwards, built when missing)." });
        cmd.Options.Add(o.NoOrt); cmd.Options.Add(o.Runner);
        return o;
    }

    /// <summary>ONNX Runtime's forward of the architecture (random weights of its shape, or <paramref name="model"/>) at batch and
    /// image size: images_per_second, seconds, cpu_seconds, peak_rss_mb.</summary>
    public static Dictionary<string, double> Infer(ParseResult r, BenchCommand.Shared s, Options o, string arch, int imageSize, int batch, string? model) =>
        InferFile(r, s, o, Export(r.GetValue(s.Python)!, arch, imageSize, model), imageSize, batch);

    /// <summary>ONNX Runtime's dynamically quantised model of the same weights (<paramref name="vit"/>): the blocks' Linear layers
    /// in the form onnxruntime.quantization.quantize_dynamic writes by default (<see cref="Onnx.OnnxExportOptions.QuantizeDynamic"/>),
    /// written by our exporter (PyPI, and so ONNX Runtime's Python quantiser, is not reachable here).</summary>
    public static Dictionary<string, double> InferQuantized(ParseResult r, BenchCommand.Shared s, Options o, VisionTransformer vit, string name, int imageSize, int batch)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mmt-bench-onnx");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"{name}_{imageSize}_int8_dynamic.onnx");
        var backbone = new Backbone(vit, new PreprocessConfig { InputSize = imageSize }, name, "bench");
        Onnx.OnnxExport.Save(path, backbone, options: new Onnx.OnnxExportOptions { QuantizeDynamic = true });
        return InferFile(r, s, o, path, imageSize, batch);
    }

    static Dictionary<string, double> InferFile(ParseResult r, BenchCommand.Shared s, Options o, string onnx, int imageSize, int batch)
    {
        string runner = Runner(r.GetValue(o.Runner));
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        return BenchCommand.RunJsonLines("dotnet", [runner, "bench-infer", onnx, "--batch", batch.ToString(inv), "--image-size", imageSize.ToString(inv),
            "--threads", r.GetValue(s.Threads).ToString(inv), "--seconds", r.GetValue(s.Seconds).ToString(inv)],
            "the ONNX Runtime side", "build samples/OnnxRuntime or pass --no-ort").FirstOrDefault()
            ?? throw new InvalidOperationException("The ONNX Runtime side printed no figures.");
    }

    /// <summary>The exported model, written once per architecture and size into the temp folder (PyTorch's export is seeded: the
    /// same file every time) and reused.</summary>
    static string Export(string python, string arch, int imageSize, string? model)
    {
        string dir = Path.Combine(Path.GetTempPath(), "mmt-bench-onnx");
        Directory.CreateDirectory(dir);
        string name = model is null ? $"{arch}_{imageSize}" : $"{Path.GetFileNameWithoutExtension(model)}_{imageSize}_{Hash(Path.GetFullPath(model))}";
        string path = Path.Combine(dir, name + ".onnx");
        if (File.Exists(path)) return path;
        string script = BenchCommand.FindScript("reference/export_onnx.py");
        string[] args = [script, "--image-size", imageSize.ToString(), "--out", path, .. model is null ? new[] { "--arch", arch } : ["--model", model]];
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Exception e) { throw new InvalidOperationException($"Could not start '{python}' to export the ONNX model ({e.Message}); install python3-torch or pass --no-ort."); }
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(path)) throw new InvalidOperationException($"Exporting the ONNX model with {script} failed (exit {p.ExitCode}): {err.Result.Trim()}");
        return path;
    }

    static string Hash(string s) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(s)))[..8];

    /// <summary>The runner's dll: given, or the sample's Release build, built first when it is not there.</summary>
    static string Runner(string? given)
    {
        if (given is not null) return File.Exists(given) ? given : throw new FileNotFoundException($"--ort-runner '{given}' does not exist.");
        string project = BenchCommand.FindScript("samples/OnnxRuntime/OnnxRuntime.csproj");
        string dll = Path.Combine(Path.GetDirectoryName(project)!, "bin", "Release", "net10.0", "OnnxRuntime.dll");
        if (File.Exists(dll)) return dll;
        Console.Error.WriteLine($"building {project} (the ONNX Runtime runner) …");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "build", project, "-c", "Release", "-v", "q", "-nologo" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(dll)) throw new InvalidOperationException($"Building the ONNX Runtime runner failed: {output.Result.Trim()} {err.Result.Trim()}");
        return dll;
    }
}
