using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.IO;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>The ML.NET layer's outputs follow the engine's rule: a model zip, an adapter folder or a multi-task folder
/// replaces only an output of ours (or nothing), and anything else is refused untouched.</summary>
public class OutputSafetyTests
{
    static (MLContext Ml, IDataView Data, VitClassifierTransformer A, VitClassifierTransformer B, ITransformer Model) Fitted(Model.Backbone backbone)
    {
        var ml = new MLContext(seed: 1);
        var rows = ColorImages.ImageRows(ColorImages.Range(0, 12));
        var data = ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        VitClassifierTransformer Task(int seed) => ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
        {
            Backbone = backbone, Masked = true, MemoryTokens = 1, Epochs = 1, Seed = seed,
        }).Fit(data);
        var a = Task(1);
        return (ml, data, a, Task(2), new TransformerChain<ITransformer>(a));
    }

    [Fact]
    public void SaveWithAdaptersRefusesAFileItDidNotWriteAndReplacesItsOwn()
    {
        using var temp = new TempFolder();
        var (ml, data, _, _, model) = Fitted(TinyVit.Create());
        var path = temp["report.zip"];
        File.WriteAllText(path, "quarterly report");
        var ex = Assert.Throws<OutputRefusedException>(() => ml.Model.SaveWithAdapters(model, data.Schema, path));
        Assert.Contains(path, ex.Message);
        Assert.Equal("quarterly report", File.ReadAllText(path));
        var ours = temp["model.zip"];
        ml.Model.SaveWithAdapters(model, data.Schema, ours);
        ml.Model.SaveWithAdapters(model, data.Schema, ours);   // our own model zip is replaced
        Assert.Equal(["model.zip", "report.zip"], Directory.GetFileSystemEntries(temp.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void SaveAdaptersRefusesAFolderOfOtherFilesAndReplacesItsOwn()
    {
        using var temp = new TempFolder();
        var (ml, data, a, b, _) = Fitted(TinyVit.Create());
        var multi = ml.Transforms.ScoreMemoryTokenTasks(new MultiTaskScoringEstimator.Options
        {
            Tasks = [new MemoryTokenTask("a", a), new MemoryTokenTask("b", b)],
        }).Fit(data);
        var docs = Directory.CreateDirectory(temp["docs"]).FullName;
        File.WriteAllText(Path.Combine(docs, "plan.txt"), "keep me");
        var ex = Assert.Throws<OutputRefusedException>(() => multi.SaveAdapters(docs));
        Assert.Contains("plan.txt", ex.Message);
        Assert.Equal(["plan.txt"], Directory.GetFileSystemEntries(docs).Select(Path.GetFileName));
        var ours = temp["tasks"];
        multi.SaveAdapters(ours);
        multi.SaveAdapters(ours);
        Assert.Equal(["multitask.json", "task0", "task1"], Directory.GetFileSystemEntries(ours).Select(Path.GetFileName).Order());
        Assert.Throws<OutputRefusedException>(() => a.SaveAdapter(docs));
        Assert.Equal(["docs", "tasks"], Directory.GetFileSystemEntries(temp.Path).Select(Path.GetFileName).Order());
    }
}
