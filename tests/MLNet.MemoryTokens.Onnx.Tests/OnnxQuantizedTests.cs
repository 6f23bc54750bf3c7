using System.Text;
using System.Text.Json;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>Reduced precision end to end: the ONNX export in ONNX Runtime's dynamic-quantisation form, and the CLI's
/// <c>--precision int16</c> (serving only).</summary>
public class OnnxQuantizedTests
{
    [Fact]
    public void TheDynamicallyQuantisedExportRunsInOnnxRuntimeCloseToFp32()
    {
        using var dir = new TempFolder();
        var backbone = RandomBackbone(seed: 3);
        var adapter = TrainedAdapter(backbone, "memory", seed: 4);
        OnnxExport.Save(dir.PathOf("fp32.onnx"), backbone, [("task", adapter)]);
        OnnxExport.Save(dir.PathOf("int8.onnx"), backbone, [("task", adapter)], new OnnxExportOptions { QuantizeDynamic = true });
        var bytes = File.ReadAllBytes(dir.PathOf("int8.onnx"));
        foreach (var op in new[] { "DynamicQuantizeLinear", "MatMulInteger" })
            Assert.Contains(op, Encoding.ASCII.GetString(bytes));
        Assert.DoesNotContain("MatMulInteger", Encoding.ASCII.GetString(File.ReadAllBytes(dir.PathOf("fp32.onnx"))));

        var x = Images(6, 7);
        var ours = adapter.CreateModel(backbone).Forward(x, keepForBackward: false).Data;
        float[] fp32, int8;
        using (var s = Session(dir.PathOf("fp32.onnx"))) fp32 = Run(s, x)["task"];
        using (var s = Session(dir.PathOf("int8.onnx"))) int8 = Run(s, x)["task"];
        AssertClose(ours, fp32, 1e-4, "fp32 export");
        double scale = ours.Max(v => Math.Abs(v)), diff = ours.Zip(int8, (a, b) => (double)Math.Abs(a - b)).Max();
        Assert.True(diff > 1e-6, "the quantised export gave fp32's logits exactly: nothing was quantised");
        Assert.True(diff < 0.05 * scale, $"the quantised export's logits differ by {diff} (scale {scale})");
    }

    [Fact]
    public void TheCliServesInInt16AndRefusesToTrainInIt()
    {
        if (!QuantizedGemm.IsSupported) return;
        using var dir = new TempFolder();
        var (ckpt, _) = ExportOnnxCommandTests.Checkpoint(dir);
        string data = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");
        string adapter = dir.PathOf("fashion");
        string[] train = ["train", "--model", ckpt, "--data", data, "--limit", "200", "--method", "memory", "--tokens", "2", "--epochs", "1",
            "--validation-fraction", "0", "--out", adapter];
        Assert.NotEqual(0, ExportOnnxCommandTests.Cli([.. train, "--precision", "int16"], out _, out var refused));
        Assert.Contains("inference precision", refused);
        Assert.False(Directory.Exists(adapter));
        Assert.NotEqual(0, ExportOnnxCommandTests.Cli(["predict", "--model", ckpt, "--precision", "int8", ckpt], out _, out var int8));
        Assert.Contains("int8", int8);   // not offered outside the benchmarks: below the agreement gate

        Assert.Equal(0, ExportOnnxCommandTests.Cli(train, out _, out _));
        double Accuracy(string precision)
        {
            Assert.Equal(0, ExportOnnxCommandTests.Cli(["evaluate", "--model", ckpt, "--adapter", adapter, "--data", data + ":test", "--limit", "300", "--json", "--precision", precision], out var json, out var err));
            Assert.DoesNotContain("error", err);
            return JsonDocument.Parse(json).RootElement.GetProperty("accuracy").GetDouble();
        }
        double fp32 = Accuracy("fp32"), int16 = Accuracy("int16");
        Assert.True(Math.Abs(fp32 - int16) <= 2.0 / 300, $"accuracy fp32 {fp32:P2}, int16 {int16:P2}");

        Assert.Equal(0, ExportOnnxCommandTests.Cli(["export-onnx", "--model", ckpt, "--adapter", adapter, "--quantize-dynamic", "--out", dir.PathOf("q.onnx")], out var exported, out _));
        Assert.Contains("q.onnx", exported);
        using var s = Session(dir.PathOf("q.onnx"));
        Assert.Contains("fashion", s.OutputMetadata.Keys);
    }
}
