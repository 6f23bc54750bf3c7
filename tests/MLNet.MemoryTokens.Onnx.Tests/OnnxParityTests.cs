using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>Every method exported to ONNX runs in ONNX Runtime with the engine's logits (within 1e-4), at batch 1 and 3 from
/// one session (the batch dimension is dynamic).</summary>
public class OnnxParityTests
{
    const double Tolerance = 1e-4;

    [Fact]
    public void BackboneAloneMatchesItsForward()
    {
        var backbone = RandomBackbone();
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("backbone.onnx"), backbone);
        Assert.Equal([new OnnxOutput(OnnxExport.BackboneOutput, 7, [])], summary.Outputs.Select(o => o with { Labels = [] }));
        using var session = Session(summary.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Images(batch, batch);
            AssertClose(backbone.Model.Forward(x).Data, Run(session, x)[OnnxExport.BackboneOutput], Tolerance, $"backbone, batch {batch}");
        }
    }

    public static TheoryData<string> AllMethods() => new(Methods.Where(m => m != "masked-extension"));

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void AdapterMatchesTheTunedModel(string method)
    {
        var backbone = RandomBackbone();
        var adapter = TrainedAdapter(backbone, method, seed: 3);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("task.onnx"), backbone, [("fashion", adapter)]);
        Assert.Equal("fashion", Assert.Single(summary.Outputs).Name);
        var ours = adapter.CreateModel(backbone, method);
        using var session = Session(summary.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Images(batch, 10 + batch);
            var expected = ours.Forward(x, keepForBackward: false).Data;
            var actual = Run(session, x)["fashion"];
            AssertClose(expected, actual, Tolerance, $"{method}, batch {batch}");
            Assert.True(expected.Max() - expected.Min() > 0.1, $"{method}: the logits barely vary; the test would not see a wrong graph");
        }
    }

    [Fact]
    public void ModelExtensionAdapterBringsTheTasksItExtends()
    {
        var backbone = RandomBackbone();
        using var dir = new TempFolder();
        // a chain trained one on top of the other, saved as mmt train does (the extension records where the others are)
        var first = TrainedAdapter(backbone, "masked", seed: 4, classes: 3);
        first.Save(dir.PathOf("first"));
        var second = TrainedAdapter(backbone, "masked-extension", seed: 5, classes: 4, extends: [Adapter.Load(dir.PathOf("first"))]);
        second.Save(dir.PathOf("second"));
        var loaded = Adapter.Load(dir.PathOf("second"));
        var summary = OnnxExport.Save(dir.PathOf("second.onnx"), backbone, [("second", loaded)]);
        var ours = loaded.CreateModel(backbone, "second");
        using var session = Session(summary.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Images(batch, 20 + batch);
            AssertClose(ours.Forward(x, keepForBackward: false).Data, Run(session, x)["second"], Tolerance, $"extension, batch {batch}");
        }
    }

    [Fact]
    public void VqtFeaturesMatchTheFeaturizer()
    {
        var backbone = RandomBackbone();
        var adapter = TrainedAdapter(backbone, "vqt-compressed", seed: 6);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("features.onnx"), backbone, [("features", adapter)], new OnnxExportOptions { Features = true });
        var model = (MLNet.MemoryTokens.Tuning.QueryTuning.QueryTunedVit)adapter.CreateModel(backbone);
        Assert.Equal(model.HeadInput, Assert.Single(summary.Outputs).Width);
        using var session = Session(summary.Path);
        var x = Images(3, 30);
        var expected = MLNet.MemoryTokens.Tuning.QueryTuning.QueryFeaturizer.Featurize(model, x).Data;
        AssertClose(expected, Run(session, x)["features"], Tolerance, "VQT features");
    }

    [Theory]
    [InlineData(OnnxExport.MinOpset)]
    [InlineData(20)]
    [InlineData(OnnxExport.MaxOpset)]
    public void EveryOpsetFromSeventeenUpRuns(int opset)
    {
        // the graphs with the most kinds of operator: memory keys, queries, L2 norms, a compressed head (Gather), task masks
        var backbone = RandomBackbone();
        var vqt = TrainedAdapter(backbone, "vqt-compressed", seed: 7);
        var vqtMemory = TrainedAdapter(backbone, "vqt-memory", seed: 8);
        var tasks = new List<(string, Adapter)> { ("a", TrainedAdapter(backbone, "masked", seed: 9)), ("b", TrainedAdapter(backbone, "masked", seed: 10)) };
        using var dir = new TempFolder();
        var x = Images(3, 40);
        var options = new OnnxExportOptions { Opset = opset };
        foreach (var (name, adapter) in new[] { ("vqt", vqt), ("vqtm", vqtMemory) })
        {
            using var s = Session(OnnxExport.Save(dir.PathOf($"{name}.onnx"), backbone, [(name, adapter)], options).Path);
            AssertClose(adapter.CreateModel(backbone).Forward(x, keepForBackward: false).Data, Run(s, x)[name], Tolerance, $"{name}, opset {opset}");
        }
        using var multi = Session(OnnxExport.Save(dir.PathOf("multi.onnx"), backbone, tasks, options).Path);
        var (_, ours) = new MultiTaskVit(backbone, tasks).Forward(x);
        AssertClose(ours[1].Data, Run(multi, x)["b"], Tolerance, $"multi-task, opset {opset}");
        Assert.Throws<ArgumentException>(() => OnnxExport.Save(dir.PathOf("bad.onnx"), backbone, null, new OnnxExportOptions { Opset = OnnxExport.MinOpset - 1 }));
    }
}
