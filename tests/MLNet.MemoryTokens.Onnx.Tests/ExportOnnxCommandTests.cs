using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary><c>mmt export-onnx</c> end to end from files, and its answers to bad input: one clear line, a non-zero exit,
/// and nothing written or replaced.</summary>
public class ExportOnnxCommandTests
{
    // width 64 in one head: what Backbone.Load infers (D / 64) from a checkpoint file
    static readonly VitConfig CliTiny = Tiny with { Dim = 64, Heads = 1, Depth = 2 };

    static readonly object ConsoleLock = new();

    internal static int Cli(string[] args, out string stdout, out string stderr)
    {
        lock (ConsoleLock)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (o, e) = (new StringWriter(), new StringWriter());
            Console.SetOut(o); Console.SetError(e);
            try { return MLNet.MemoryTokens.Cli.Program.Main(args); }
            finally { Console.SetOut(oldOut); Console.SetError(oldErr); stdout = o.ToString(); stderr = e.ToString(); }
        }
    }

    /// <summary>A checkpoint file and the backbone loaded from it (as the CLI loads it), plus adapters saved beside it.</summary>
    internal static (string Checkpoint, Backbone Backbone) Checkpoint(TempFolder dir)
    {
        var model = RandomBackbone(seed: 9, CliTiny).Model;
        string path = dir.PathOf("vit.safetensors");
        SafeTensorsFile.Write(path, model.Parameters);
        return (path, Backbone.Load(path));
    }

    [Fact]
    public void ExportsAnAdapterAndTheMultiTaskPassFromFiles()
    {
        using var dir = new TempFolder();
        var (ckpt, backbone) = Checkpoint(dir);
        TrainedAdapter(backbone, "vqt-memory", seed: 1).Save(dir.PathOf("vqt memory"));
        TrainedAdapter(backbone, "masked", seed: 2).Save(dir.PathOf("shoes"));
        TrainedAdapter(backbone, "masked", seed: 3).Save(dir.PathOf("digits"));
        var x = Images(3, 5);

        Assert.Equal(0, Cli(["export-onnx", "--model", ckpt, "--adapter", dir.PathOf("vqt memory"), "--out", dir.PathOf("one.onnx")], out var stdout, out var stderr));
        Assert.Contains("output vqt_memory float32 [batch, 5]", stdout);
        Assert.Equal("", stderr);
        var ours = Adapter.Load(dir.PathOf("vqt memory")).CreateModel(backbone).Forward(x, keepForBackward: false);
        using (var s = Session(dir.PathOf("one.onnx"))) AssertClose(ours.Data, Run(s, x)["vqt_memory"], 1e-4, "vqt memory via the CLI");

        Assert.Equal(0, Cli(["export-onnx", "--model", ckpt, "--adapters", $"{dir.PathOf("shoes")},numbers={dir.PathOf("digits")}", "--out", dir.PathOf("multi.onnx"), "--opset", "21"], out stdout, out _));
        var (original, tasks) = new MultiTaskVit(backbone, [("shoes", Adapter.Load(dir.PathOf("shoes"))), ("numbers", Adapter.Load(dir.PathOf("digits")))]).Forward(x);
        using (var s = Session(dir.PathOf("multi.onnx")))
        {
            var outputs = Run(s, x);
            Assert.Equal(["numbers", "original", "shoes"], outputs.Keys.Order());
            AssertClose(original!.Data, outputs["original"], 1e-4, "original via the CLI");
            AssertClose(tasks[0].Data, outputs["shoes"], 1e-4, "shoes via the CLI");
            AssertClose(tasks[1].Data, outputs["numbers"], 1e-4, "numbers via the CLI");
        }
        // a model mmt wrote is replaced without --force
        Assert.Equal(0, Cli(["export-onnx", "--model", ckpt, "--out", dir.PathOf("multi.onnx")], out stdout, out _));
        Assert.Contains("output logits float32 [batch, 7]", stdout);
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("vqt-memory")]
    [InlineData("vqt-memory --queries-skip-memory")]
    public void TrainEvaluateExportOnTheShippedFashionMnistSampleGivesEqualPredictions(string methodArgs)
    {
        var (method, extra) = (methodArgs.Split(' ')[0], methodArgs.Split(' ').Skip(1).ToArray());
        using var dir = new TempFolder();
        var (ckpt, backbone) = Checkpoint(dir);
        string data = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");
        string adapter = dir.PathOf("fashion");
        Assert.Equal(0, Cli(["train", "--model", ckpt, "--data", data, "--limit", "200", "--method", method, "--tokens", "2", "--epochs", "1",
            "--validation-fraction", "0", .. extra, "--out", adapter], out _, out var err));
        Assert.True(err.Length == 0 || !err.Contains("error"), err);
        Assert.Equal(0, Cli(["evaluate", "--model", ckpt, "--adapter", adapter, "--data", data + ":test", "--limit", "100"], out _, out _));
        Assert.Equal(0, Cli(["export-onnx", "--model", ckpt, "--adapter", adapter, "--out", dir.PathOf("fashion.onnx")], out _, out _));
        // the test images as evaluate prepares them, through ours and through ONNX Runtime
        var a = Adapter.Load(adapter);
        Assert.Equal(method == "vqt-memory" ? !extra.Contains("--queries-skip-memory") : null, a.Config.QueriesReadMemory);
        var test = MLNet.MemoryTokens.Data.PreparedImages.From(MLNet.MemoryTokens.Data.ImageDatasets.Take(MLNet.MemoryTokens.Data.ImageDatasets.Open(data + ":test"), 100),
            a.Config.Preprocess with { InputSize = a.Config.ImageSize });
        var x = test.Batch(Enumerable.Range(0, test.Count).ToArray());
        var ours = a.CreateModel(Backbone.Load(ckpt, new BackboneOptions { ImageSize = a.Config.ImageSize, DropHead = true })).Forward(x, keepForBackward: false).Data;
        using var s = Session(dir.PathOf("fashion.onnx"));
        var onnx = Run(s, x)["fashion"];
        AssertClose(ours, onnx, 1e-4, $"{methodArgs} on Fashion-MNIST");
        int classes = a.Config.ClassLabels.Length;
        for (int i = 0; i < test.Count; i++)
            Assert.Equal(Classification.TopK(ours.AsSpan(i * classes, classes), 1), Classification.TopK(onnx.AsSpan(i * classes, classes), 1));
    }

    [Fact]
    public void BadInputGetsOneClearLineAndANonZeroExit()
    {
        using var dir = new TempFolder();
        var (ckpt, backbone) = Checkpoint(dir);
        TrainedAdapter(backbone, "memory", seed: 1).Save(dir.PathOf("plain"));
        TrainedAdapter(backbone, "masked", seed: 2).Save(dir.PathOf("masked"));
        string precious = dir.PathOf("notes.onnx");
        File.WriteAllText(precious, "not a model");
        File.WriteAllText(dir.PathOf("broken.safetensors"), "{ this is not a checkpoint");
        string Out(string name) => dir.PathOf(name);

        void Refused(string[] args, string expected)
        {
            int code = Cli(["export-onnx", .. args], out _, out var stderr);
            Assert.True(code != 0, $"{string.Join(' ', args)}: exit 0");
            Assert.StartsWith("error: ", stderr);
            Assert.Contains(expected, stderr);
            Assert.DoesNotContain("   at ", stderr);   // no stack trace
        }

        Refused(["--model", ckpt, "--adapter", Out("missing"), "--out", Out("a.onnx")], "adapter_config.json is missing");
        Refused(["--model", Out("broken.safetensors"), "--out", Out("a.onnx")], "broken.safetensors");
        Refused(["--model", ckpt, "--out", Out("a.onnx"), "--opset", "12"], "--opset 12");
        Refused(["--model", ckpt, "--adapter", Out("plain"), "--adapters", Out("masked"), "--out", Out("a.onnx")], "not both");
        Refused(["--model", ckpt, "--adapters", $"{Out("masked")},{Out("plain")}", "--out", Out("a.onnx")], "attention-masked");
        Refused(["--model", ckpt, "--adapter", Out("plain"), "--features", "--out", Out("a.onnx")], "only VQT adapters export features");
        Refused(["--model", ckpt, "--out", Out("no such folder/a.onnx")], "does not exist");
        Refused(["--model", ckpt, "--out", dir.Root], "is a folder");
        Refused(["--model", ckpt, "--out", precious], "refusing to replace it");
        Assert.Equal("not a model", File.ReadAllText(precious));
        Assert.False(File.Exists(Out("a.onnx")));
        Assert.Empty(Directory.GetFiles(dir.Root, "*.tmp", SearchOption.AllDirectories));
        // --force replaces it
        Assert.Equal(0, Cli(["export-onnx", "--model", ckpt, "--out", precious, "--force"], out _, out _));
        using var s = Session(precious);
        Assert.Equal(["logits"], s.OutputMetadata.Keys);
    }
}
