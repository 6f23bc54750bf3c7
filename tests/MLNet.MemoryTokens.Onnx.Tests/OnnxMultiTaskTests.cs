using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>The masked multi-task pass in one ONNX graph: each task's output equals <see cref="MultiTaskVit"/>'s, and the
/// original head's output is exactly what the backbone's own export gives.</summary>
public class OnnxMultiTaskTests
{
    const double Tolerance = 1e-4;

    static List<(string Name, Adapter Adapter)> Tasks(Backbone backbone, MultiTaskMode mode, int count)
    {
        var tasks = new List<(string, Adapter)>();
        for (int i = 0; i < count; i++)
            tasks.Add(($"task{i}", TrainedAdapter(backbone, "masked", seed: 40 + i, classes: 3 + i,
                extends: mode == MultiTaskMode.Extension ? tasks.Select(t => t.Item2).ToArray() : null)));
        return tasks;
    }

    [Theory]
    [InlineData(MultiTaskMode.Concatenation)]
    [InlineData(MultiTaskMode.Extension)]
    public void EveryOutputMatchesTheMultiTaskPassAndTheOriginalIsTheBackbones(MultiTaskMode mode)
    {
        var backbone = RandomBackbone();
        var tasks = Tasks(backbone, mode, 3);
        using var dir = new TempFolder();
        var multi = OnnxExport.Save(dir.PathOf("multi.onnx"), backbone, tasks);   // mode: extension found from the adapters
        Assert.Equal([OnnxExport.OriginalOutput, "task0", "task1", "task2"], multi.Outputs.Select(o => o.Name));
        Assert.Equal([7, 3, 4, 5], multi.Outputs.Select(o => o.Width));
        var alone = OnnxExport.Save(dir.PathOf("backbone.onnx"), backbone);
        var ours = new MultiTaskVit(backbone, tasks, mode);
        using var session = Session(multi.Path);
        using var backboneSession = Session(alone.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Images(batch, 50 + batch);
            var outputs = Run(session, x);
            var (original, taskLogits) = ours.Forward(x);
            AssertClose(original!.Data, outputs[OnnxExport.OriginalOutput], Tolerance, $"original, batch {batch}");
            for (int t = 0; t < tasks.Count; t++) AssertClose(taskLogits[t].Data, outputs[$"task{t}"], Tolerance, $"task{t}, batch {batch}");
            // the original head is the backbone's: bit for bit the backbone's own export
            Assert.Equal(Run(backboneSession, x)[OnnxExport.BackboneOutput], outputs[OnnxExport.OriginalOutput]);
        }
    }

    [Fact]
    public void TasksWithoutTheOriginalHeadAndASingleTaskPass()
    {
        var backbone = RandomBackbone();
        var tasks = Tasks(backbone, MultiTaskMode.Concatenation, 2);
        using var dir = new TempFolder();
        var noOriginal = OnnxExport.Save(dir.PathOf("tasks.onnx"), backbone, tasks, new OnnxExportOptions { OriginalHead = false });
        Assert.Equal(["task0", "task1"], noOriginal.Outputs.Select(o => o.Name));
        var single = OnnxExport.Save(dir.PathOf("single.onnx"), backbone, tasks.Take(1).ToList(), new OnnxExportOptions { MultiTask = true });
        Assert.Equal([OnnxExport.OriginalOutput, "task0"], single.Outputs.Select(o => o.Name));
        var x = Images(2, 60);
        var (_, ours) = new MultiTaskVit(backbone, tasks).Forward(x);
        using (var s = Session(noOriginal.Path))
        {
            var outputs = Run(s, x);
            AssertClose(ours[0].Data, outputs["task0"], Tolerance, "task0 without original");
            AssertClose(ours[1].Data, outputs["task1"], Tolerance, "task1 without original");
        }
        using (var s = Session(single.Path))
            AssertClose(ours[0].Data, Run(s, x)["task0"], Tolerance, "task0 alone in the pass");
    }

    [Fact]
    public void RefusesWhatTheMultiTaskPassRefuses()
    {
        var backbone = RandomBackbone();
        using var dir = new TempFolder();
        var plain = TrainedAdapter(backbone, "memory", seed: 70);
        var masked = TrainedAdapter(backbone, "masked", seed: 71);
        var e = Assert.Throws<ArgumentException>(() => OnnxExport.Save(dir.PathOf("x.onnx"), backbone, [("a", masked), ("b", plain)]));
        Assert.Contains("attention-masked", e.Message);
        Assert.Throws<ArgumentException>(() => OnnxExport.Save(dir.PathOf("x.onnx"), backbone, [("a", masked), ("a", masked)]));
        Assert.Throws<ArgumentException>(() => OnnxExport.Save(dir.PathOf("x.onnx"), backbone, [("original", masked), ("b", masked)]));
        Assert.Throws<ArgumentException>(() => OnnxExport.Save(dir.PathOf("x.onnx"), backbone, [("has/slash", masked)]));
        var other = RandomBackbone(seed: 2);
        Assert.Throws<InvalidOperationException>(() => OnnxExport.Save(dir.PathOf("x.onnx"), other, [("a", masked)]));
        Assert.Empty(Directory.GetFiles(dir.Root));   // nothing written on refusal
    }
}
