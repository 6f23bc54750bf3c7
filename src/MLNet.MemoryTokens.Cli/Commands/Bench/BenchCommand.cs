using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;

namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary><c>mmt bench</c>: our figures and the anchors' for the same work, from one run, with ratios (with
/// <c>--backend torchsharp</c>, the TorchSharp backend's too, in the same process); one file per benchmark in this folder.</summary>
/// <remarks>Each anchor runs as a child process, so its peak memory is its own: PyTorch (reference/bench_torch.py with the given
/// python, Debian's python3-torch) and ONNX Runtime (<see cref="OnnxRuntimeAnchor"/>). Every side uses the same thread count,
/// shapes and timing rule (median of repeated runs after a warm-up).</remarks>
internal static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Benchmark against the anchors side by side (ONNX Runtime for inference, PyTorch, and the TorchSharp backend): infer, gemm, train, e2e, vqt, multitask, memory, agreement.");
        cmd.Subcommands.Add(InferBench.Create());
        cmd.Subcommands.Add(GemmBench.Create());
        cmd.Subcommands.Add(TrainBench.Create());
        cmd.Subcommands.Add(MultiTaskBench.Create());
        cmd.Subcommands.Add(VqtBench.Create());
        cmd.Subcommands.Add(MemoryBench.Create());
        cmd.Subcommands.Add(E2eBench.Create());
        cmd.Subcommands.Add(AgreementBench.Create());
        return cmd;
    }

    internal sealed record Shared(Option<int> Threads, Option<double> Seconds, Option<string> Python, Option<string?> Script, Option<bool> NoTorch, BackendOptions? Backend)
    {
        /// <summary>The TorchSharp backend's compute options when <c>--backend torchsharp</c> asks for its figures too (LibTorch
        /// loaded and set to the same thread count), else null.</summary>
        public MLNet.MemoryTokens.Tuning.ComputeOptions? TorchSharp(ParseResult r)
        {
            var compute = Backend?.Resolve(r, r.GetValue(Threads));
            return compute is null || compute.IsManaged ? null : compute;
        }
    }

    /// <param name="torchSharp">The benchmark also measures the TorchSharp backend when asked (<c>--backend torchsharp</c>).</param>
    internal static Shared AddShared(Command cmd, bool torchSharp = false)
    {
        var s = new Shared(
            new Option<int>("--threads") { Description = "Threads for both sides.", DefaultValueFactory = _ => 2 },
            new Option<double>("--seconds") { Description = "Minimum timed seconds per figure.", DefaultValueFactory = _ => 5 },
            new Option<string>("--python") { Description = "Python with torch (Debian python3-torch).", DefaultValueFactory = _ => "/usr/bin/python3" },
            new Option<string?>("--torch-script") { Description = "Path of reference/bench_torch.py (default: found from the current folder upwards)." },
            new Option<bool>("--no-torch") { Description = "Without PyTorch's figures." },
            null!);
        cmd.Options.Add(s.Threads); cmd.Options.Add(s.Seconds); cmd.Options.Add(s.Python); cmd.Options.Add(s.Script); cmd.Options.Add(s.NoTorch);
        return torchSharp ? s with { Backend = BackendOptions.AddTo(cmd, "managed (default): our figures and PyTorch's; torchsharp: the TorchSharp backend's too, in this process, with ratios.", benchmark: true) } : s;
    }

    internal static List<Dictionary<string, double>> RunTorch(ParseResult r, Shared s, string[] args)
    {
        string script = r.GetValue(s.Script) ?? FindScript("reference/bench_torch.py");
        return RunJsonLines(r.GetValue(s.Python)!, [script, .. args, "--threads", r.GetValue(s.Threads).ToString(),
            "--seconds", r.GetValue(s.Seconds).ToString(System.Globalization.CultureInfo.InvariantCulture)],
            "the PyTorch side", "install python3-torch or pass --no-torch");
    }

    /// <summary>Runs an anchor's process and reads the numeric fields of each JSON line it prints (other lines are ignored).</summary>
    internal static List<Dictionary<string, double>> RunJsonLines(string fileName, IEnumerable<string> args, string what, string remedy)
    {
        var psi = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Exception e) { throw new InvalidOperationException($"Could not start '{psi.FileName}' for {what} ({e.Message}); {remedy}."); }
        var stderr = p.StandardError.ReadToEndAsync();
        var lines = new List<Dictionary<string, double>>();
        while (p.StandardOutput.ReadLine() is string line)
        {
            if (!line.StartsWith('{')) continue;
            var doc = JsonDocument.Parse(line).RootElement;
            lines.Add(doc.EnumerateObject().Where(e => e.Value.ValueKind == JsonValueKind.Number).ToDictionary(e => e.Name, e => e.Value.GetDouble()));
        }
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{char.ToUpperInvariant(what[0])}{what[1..]} failed (exit {p.ExitCode}): {stderr.Result.Trim()}");
        return lines;
    }

    internal static string FindScript(string relative)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, relative))) return Path.Combine(dir.FullName, relative);
        throw new FileNotFoundException($"Could not find {relative} above the current folder; pass --torch-script.");
    }
}
