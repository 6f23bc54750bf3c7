using System.Diagnostics;
using System.Text.Json;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.ML.Tests;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary><c>mmt</c> with <c>--backend torchsharp</c>: train, evaluate, predict and featurize on the CPU give what the managed
/// backend gives from the same adapter folder; bad backends, devices and LibTorch folders are refused by name; and the
/// repository build of <c>mmt</c> (which carries no LibTorch) finds the NuGet packages folder's copy or says what to install.</summary>
[Collection(SerialCollection.Name)]   // the in-process runs swap the console
public sealed class CommandLineTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "mmt-ts-cli-" + Guid.NewGuid().ToString("N")[..8]);
    readonly string _checkpoint;
    static readonly string Sample = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");

    public CommandLineTests()
    {
        Directory.CreateDirectory(_dir);
        _checkpoint = TinyVit.WriteCheckpoint(_dir, seed: 2);
    }

    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }

    static (int Code, string Out, string Err) Mmt(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(o); Console.SetError(e);
        try { return (Cli.Program.Main(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    /// <summary>A 20×24 colour image file to predict.</summary>
    string Image()
    {
        var path = Path.Combine(_dir, "image.ppm");
        if (!File.Exists(path)) ColorImages.WritePpm(ColorImages.Image(7, 20, 24), path);
        return path;
    }

    static JsonElement Json(string stdout) => JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last()).RootElement;

    string Train(string name, string method, params string[] backend)
    {
        var folder = Path.Combine(_dir, name);
        var (code, _, err) = Mmt(["train", "-m", _checkpoint, "-d", Sample, "--limit", "60", "--image-size", "16", "--method", method, "--tokens", "2",
            "--query-dropout", "0", "--epochs", "1", "--batch", "20", "--seed", "4", "-o", folder, "--plot", "false", "--json", .. backend]);
        Assert.True(code == 0, err);
        return folder;
    }

    [Fact]
    public void TrainEvaluatePredictAndFeaturizeOnTorchSharpAgreeWithTheManagedBackend()
    {
        string[] torch = ["--backend", "torchsharp", "--device", "cpu"];
        var onTorch = Train("torch", "memory", torch);
        var onManaged = Train("managed", "memory");
        Assert.Equal("torchsharp", Adapter.Load(onTorch).Config.Training["compute"].GetProperty("Backend").GetString());
        foreach (var (name, t) in Adapter.Load(onManaged).Tensors)
            TinyModels.AssertClose(t.Data, Adapter.Load(onTorch).Tensors[name].Data, 2e-4, 1e-4, $"mmt train on both backends: {name}");

        // the TorchSharp adapter evaluated by each backend
        string[] eval = ["evaluate", "-m", _checkpoint, "-a", onTorch, "-d", Sample + ":test", "--limit", "40", "--json"];
        var (c1, managedEval, e1) = Mmt(eval);
        var (c2, torchEval, e2) = Mmt([.. eval, .. torch]);
        Assert.True(c1 == 0 && c2 == 0, e1 + e2);
        Assert.Equal(Json(managedEval).GetProperty("accuracy").GetDouble(), Json(torchEval).GetProperty("accuracy").GetDouble());
        Assert.Equal(Json(managedEval).GetProperty("log_loss").GetDouble(), Json(torchEval).GetProperty("log_loss").GetDouble(), 4);

        // predict with the adapter, and the backbone's own head
        var image = Image();
        var (p1, managedPredict, pe1) = Mmt("predict", "-m", _checkpoint, "-a", onTorch, image, "--json");
        var (p2, torchPredict, pe2) = Mmt(["predict", "-m", _checkpoint, "-a", onTorch, image, "--json", .. torch]);
        Assert.True(p1 == 0 && p2 == 0, pe1 + pe2);
        Probabilities(managedPredict, torchPredict, "predict --adapter");

        var withHead = TinyVit.WriteCheckpoint(Directory.CreateDirectory(Path.Combine(_dir, "head")).FullName, seed: 3, classes: 7);
        var (h1, managedHead, he1) = Mmt("predict", "-m", withHead, image, "--json", "--top-k", "3");
        var (h2, torchHead, he2) = Mmt(["predict", "-m", withHead, image, "--json", "--top-k", "3", .. torch]);
        Assert.True(h1 == 0 && h2 == 0, he1 + he2);
        Probabilities(managedHead, torchHead, "predict with the backbone's head");

        // featurize a VQT adapter on both backends: the same feature vectors
        var vqt = Train("vqt", "vqt", torch);
        var (f1, _, fe1) = Mmt("featurize", "-m", _checkpoint, "-a", vqt, "-d", Sample + ":test", "--limit", "12", "-o", Path.Combine(_dir, "managed.safetensors"));
        var (f2, _, fe2) = Mmt(["featurize", "-m", _checkpoint, "-a", vqt, "-d", Sample + ":test", "--limit", "12", "-o", Path.Combine(_dir, "torch.safetensors"), .. torch]);
        Assert.True(f1 == 0 && f2 == 0, fe1 + fe2);
        TinyModels.AssertClose(SafeTensorsFile.Read(Path.Combine(_dir, "managed.safetensors")).Tensors["features"].Data,
            SafeTensorsFile.Read(Path.Combine(_dir, "torch.safetensors")).Tensors["features"].Data, 1e-5, 1e-5, "mmt featurize, managed vs TorchSharp");
    }

    static void Probabilities(string a, string b, string what)
    {
        var (x, y) = (Json(a).GetProperty("top"), Json(b).GetProperty("top"));
        Assert.Equal(x.EnumerateArray().Select(t => t.GetProperty("index").GetInt32()), y.EnumerateArray().Select(t => t.GetProperty("index").GetInt32()));
        TinyModels.AssertClose(x.EnumerateArray().Select(t => t.GetProperty("probability").GetSingle()).ToArray(),
            y.EnumerateArray().Select(t => t.GetProperty("probability").GetSingle()).ToArray(), 1e-5, 1e-5, $"mmt {what}, managed vs TorchSharp");
    }

    [Fact]
    public void BadBackendDeviceAndLibTorchFolderAreRefusedByName()
    {
        var image = Image();
        var (c1, _, e1) = Mmt("predict", "-m", _checkpoint, image, "--device", "cuda");
        Assert.Equal(1, c1);
        Assert.Contains("managed engine computes on the CPU", e1);
        var (c2, _, e2) = Mmt("predict", "-m", _checkpoint, image, "--backend", "jax");
        Assert.NotEqual(0, c2);
        Assert.Contains("jax", e2);
        var (c3, _, e3) = Mmt("predict", "-m", _checkpoint, image, "--backend", "torchsharp", "--device", "tpu");
        Assert.Equal(1, c3);
        Assert.Contains("'tpu'", e3);
        var (c4, _, e4) = Mmt("predict", "-m", _checkpoint, image, "--libtorch", _dir);
        Assert.Equal(1, c4);
        Assert.Contains("--libtorch applies to --backend torchsharp", e4);
        var (c5, _, e5) = Mmt("train", "-m", _checkpoint, "-d", Sample, "--limit", "20", "--image-size", "16", "--method", "vqt", "--keep-features", "0.5",
            "--epochs", "1", "-o", Path.Combine(_dir, "never"), "--backend", "torchsharp", "--device", "cpu");
        Assert.Equal(1, c5);
        Assert.Contains("managed backend only", e5);
        Assert.False(Directory.Exists(Path.Combine(_dir, "never")));
    }

    /// <summary>The repository build of mmt carries TorchSharp's glue, not LibTorch: with <c>--backend torchsharp</c> it loads
    /// LibTorch from the NuGet packages folder (restored by the CLI project's PackageDownload) or from <c>MMT_LIBTORCH</c>, and
    /// without either says what to install — one line on stderr, exit 1, nothing written beside the tool.</summary>
    [Fact]
    public void TheBuiltToolFindsLibTorchOrSaysWhatToInstall()
    {
        var config = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        var tool = Path.Combine(TestPaths.RepoRoot, "src", "MLNet.MemoryTokens.Cli", "bin", config, "net10.0", "mmt.dll");
        Assert.True(File.Exists(tool), $"{tool} is built with this test project (it references the CLI)");
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(tool)!, "runtimes", "linux-x64", "native", "libtorch_cpu.so")), "the tool's build output must not carry LibTorch");
        var cached = TorchBackend.FindInNuGetCache();
        Assert.True(cached is not null, "the CLI project restores libtorch-cpu-linux-x64 into the NuGet packages folder (PackageDownload)");
        var image = Image();
        string[] args = ["predict", "-m", TinyVit.WriteCheckpoint(_dir, seed: 5, classes: 4), image, "--json", "--backend", "torchsharp", "--device", "cpu"];

        (int, string, string) Run(Dictionary<string, string?> env, params string[] extra)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(tool);
            foreach (var a in args.Concat(extra)) psi.ArgumentList.Add(a);
            foreach (var (k, v) in env) psi.Environment[k] = v;
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, stdout, stderr.Result);
        }

        var (code, stdout, stderr) = Run(new() { [TorchBackend.EnvironmentVariable] = null });
        Assert.True(code == 0, stderr);
        Assert.Contains("\"probability\"", stdout);
        var (code2, stdout2, stderr2) = Run(new() { [TorchBackend.EnvironmentVariable] = null }, "--libtorch", cached!);
        Assert.True(code2 == 0, stderr2);
        Assert.Equal(stdout, stdout2);

        var empty = Directory.CreateDirectory(Path.Combine(_dir, "no-packages")).FullName;
        var (code3, stdout3, stderr3) = Run(new() { ["NUGET_PACKAGES"] = empty, [TorchBackend.EnvironmentVariable] = null });
        Assert.Equal(1, code3);
        Assert.Equal("", stdout3.Trim());
        Assert.Contains("TorchSharp-cpu", stderr3);
        Assert.Contains(TorchBackend.EnvironmentVariable, stderr3);
        Assert.Single(stderr3.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(tool)!, "cpu")), "TorchSharp's fallback copied LibTorch beside the tool");

        var (code4, _, stderr4) = Run(new() { ["NUGET_PACKAGES"] = empty, [TorchBackend.EnvironmentVariable] = empty });
        Assert.Equal(1, code4);
        Assert.Contains(empty, stderr4);
    }
}
