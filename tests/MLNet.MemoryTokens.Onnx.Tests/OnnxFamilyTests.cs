using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>Every backbone family exported to ONNX — the backbone alone (a distilled model's two heads averaged), each method,
/// the masked multi-task pass — runs in ONNX Runtime with the engine's logits (within 1e-4).</summary>
public class OnnxFamilyTests
{
    const double Tolerance = 1e-4;

    public static TheoryData<string> FamilyNames() => new(Families.Keys);

    public static TheoryData<string, string> FamilyMethods()
    {
        var data = new TheoryData<string, string>();
        foreach (var family in Families.Keys)
            foreach (var method in Methods.Where(m => m != "masked-extension"))
                if (!(method == "head-class" && !Families[family].ClassToken)) data.Add(family, method);
        return data;
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void BackboneAloneMatchesItsForward(string family)
    {
        var backbone = RandomBackbone(config: Families[family]);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("backbone.onnx"), backbone);
        using var session = Session(summary.Path);
        var x = Images(3, 3, backbone.Model.Config.ImageSize);
        var expected = backbone.Model.Forward(x).Data;
        AssertClose(expected, Run(session, x)[OnnxExport.BackboneOutput], Tolerance, $"{family} backbone");
        Assert.True(expected.Max() - expected.Min() > 0.1, $"{family}: the logits barely vary; the test would not see a wrong graph");
    }

    [Theory]
    [MemberData(nameof(FamilyMethods))]
    public void AdapterMatchesTheTunedModel(string family, string method)
    {
        var backbone = RandomBackbone(config: Families[family]);
        var adapter = TrainedAdapter(backbone, method, seed: 3);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("task.onnx"), backbone, [("task", adapter)]);
        var ours = adapter.CreateModel(backbone, method);
        using var session = Session(summary.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Images(batch, 10 + batch, backbone.Model.Config.ImageSize);
            var expected = ours.Forward(x, keepForBackward: false).Data;
            AssertClose(expected, Run(session, x)["task"], Tolerance, $"{family} {method}, batch {batch}");
            Assert.True(expected.Max() - expected.Min() > 0.1, $"{family} {method}: the logits barely vary; the test would not see a wrong graph");
        }
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void MultiTaskPassServesTheOriginalHeadAndEachTask(string family)
    {
        var backbone = RandomBackbone(config: Families[family]);
        var tasks = new List<(string, Adapter)> { ("a", TrainedAdapter(backbone, "masked", seed: 9)), ("b", TrainedAdapter(backbone, "masked", seed: 10)) };
        using var dir = new TempFolder();
        using var session = Session(OnnxExport.Save(dir.PathOf("multi.onnx"), backbone, tasks).Path);
        var x = Images(3, 40, backbone.Model.Config.ImageSize);
        var (original, ours) = new MultiTaskVit(backbone, tasks).Forward(x);
        var outputs = Run(session, x);
        Assert.Equal(backbone.Model.Forward(x).Data, original!.Data);   // the masked pass keeps the backbone's own logits, bit for bit
        AssertClose(original.Data, outputs[OnnxExport.OriginalOutput], Tolerance, $"{family} multi-task: original");
        AssertClose(ours[0].Data, outputs["a"], Tolerance, $"{family} multi-task: a");
        AssertClose(ours[1].Data, outputs["b"], Tolerance, $"{family} multi-task: b");
    }

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void ModelExtensionRunsAsTrainedAloneAndInTheExtensionPass(string family)
    {
        var backbone = RandomBackbone(config: Families[family]);
        using var dir = new TempFolder();
        // saved as mmt train saves them: the extension records where the task it extends is
        TrainedAdapter(backbone, "masked", seed: 4, classes: 3).Save(dir.PathOf("first"));
        var first = Adapter.Load(dir.PathOf("first"));
        TrainedAdapter(backbone, "masked-extension", seed: 5, classes: 4, extends: [first]).Save(dir.PathOf("second"));
        var second = Adapter.Load(dir.PathOf("second"));
        var x = Images(3, 50, backbone.Model.Config.ImageSize);
        var alone = second.CreateModel(backbone, "second", [first]).Forward(x, keepForBackward: false);
        using (var s = Session(OnnxExport.Save(dir.PathOf("second.onnx"), backbone, [("second", second)]).Path))
            AssertClose(alone.Data, Run(s, x)["second"], Tolerance, $"{family} extension alone");
        // the chain in one pass: the extension's task reads the first task's row and memory, as when it was trained
        var (_, tasks) = new MultiTaskVit(backbone, [("first", first), ("second", second)], MultiTaskMode.Extension).Forward(x);
        AssertClose(alone.Data, tasks[1].Data, 1e-5, $"{family} extension pass vs alone");
        using var multi = Session(OnnxExport.Save(dir.PathOf("chain.onnx"), backbone, [("first", first), ("second", second)]).Path);
        AssertClose(tasks[1].Data, Run(multi, x)["second"], Tolerance, $"{family} extension pass in ONNX");
    }
}
