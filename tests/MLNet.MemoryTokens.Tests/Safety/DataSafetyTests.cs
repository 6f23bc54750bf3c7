using System.Text;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Nothing a user had is deleted or overwritten unless we wrote it: outputs are checked before the work, replaced
/// only when empty or ours, and a failed save leaves the previous output as it was.</summary>
public class DataSafetyTests
{
    [Fact]
    public void TrainReplacesItsOwnAdapterAndFillsAnEmptyFolderInPlace()
    {
        using var job = new Job();
        var empty = Directory.CreateDirectory(job.S["empty"]).FullName;
        Assert.True(RunCli(job.Train(empty)).ExitCode == 0);
        Assert.Equal([Adapter.ConfigFile, Adapter.WeightsFile], Directory.GetFiles(empty).Select(Path.GetFileName).Order());
        var first = File.ReadAllBytes(Path.Combine(empty, Adapter.WeightsFile));
        var again = RunCli(job.Train(empty, "--seed", "9"));          // an adapter of ours: replaced by the new one
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.NotEqual(first, File.ReadAllBytes(Path.Combine(empty, Adapter.WeightsFile)));
        Assert.Equal(["data", "empty", "vit.safetensors"], Directory.GetFileSystemEntries(job.S.Root).Select(Path.GetFileName).Order());   // no staging left
    }

    [Fact]
    public void AnAdapterFolderWithAFileAddedOrAPeftAdapterIsNeverReplaced()
    {
        using var s = new Scratch();
        var adapter = TinyAdapter();
        var mine = s["mine"];
        adapter.Save(mine);
        File.WriteAllText(Path.Combine(mine, "notes.md"), "what I tried");
        var before = Snapshot(mine);
        var ex = Assert.Throws<OutputRefusedException>(() => adapter.Save(mine));
        Assert.Contains("notes.md", ex.Message);
        AssertSameTree(before, mine);
        // a Hugging Face PEFT adapter has the same two file names
        var peft = Directory.CreateDirectory(s["peft"]).FullName;
        File.WriteAllText(Path.Combine(peft, Adapter.ConfigFile), """{"peft_type": "LORA", "r": 8}""");
        SafeTensorsFile.Write(Path.Combine(peft, Adapter.WeightsFile), new Dictionary<string, Tensor> { ["lora_A"] = new([2, 2]) });
        before = Snapshot(peft);
        var peftEx = Assert.Throws<OutputRefusedException>(() => adapter.Save(peft));
        Assert.Contains("not written by MLNet.MemoryTokens", peftEx.Message);
        AssertSameTree(before, peft);
    }

    [Fact]
    public void AFileOrASymbolicLinkAtTheOutputIsRefused()
    {
        using var s = new Scratch();
        var adapter = TinyAdapter();
        File.WriteAllText(s["file"], "mine");
        Assert.Throws<OutputRefusedException>(() => adapter.Save(s["file"]));
        Assert.Equal("mine", File.ReadAllText(s["file"]));
        Directory.CreateDirectory(s["elsewhere"]);
        Directory.CreateSymbolicLink(s["link"], s["elsewhere"]);
        Assert.Throws<OutputRefusedException>(() => adapter.Save(s["link"]));
        Assert.Empty(Directory.GetFileSystemEntries(s["elsewhere"]));
    }

    [ReadOnlyFolderFact]
    public void AnAdapterInAReadOnlyFolderIsRefusedAndKept()
    {
        using var s = new Scratch();
        var adapter = TinyAdapter();
        var dir = s["adapter"];
        adapter.Save(dir);
        var before = Snapshot(dir);
        Assert.True(ReadOnlyFolder.TryMake(dir));
        var ex = Assert.Throws<OutputRefusedException>(() => Adapter.EnsureCanSave(dir));
        Assert.Contains(dir, ex.Message);
        Assert.Throws<OutputRefusedException>(() => TinyAdapter(seed: 2).Save(Path.Combine(dir, "inner")));
        ReadOnlyFolder.Undo(dir);
        AssertSameTree(before, dir);
    }

    [Fact]
    public void ACheckpointFolderHoldingOtherFilesIsRefusedBeforeTraining()
    {
        using var job = new Job();
        var docs = Documents(job.S["documents"]);
        var before = Snapshot(docs);
        var run = RunCli(job.Train(job.S["adapter"], "--checkpoint-dir", docs));
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(docs, run.Stderr);
        AssertSameTree(before, docs);
        Assert.False(Directory.Exists(job.S["adapter"]));
    }

    [Fact]
    public void AFileWhereTheVqtCacheGoesIsNeverDeleted()
    {
        using var s = new Scratch();
        var c = TinyConfig();
        string name;
        using (var cache = new KeyValueCache(4, c, TensorDType.F16, 0, s["a"], "identity")) name = Path.GetFileName(cache.FilePath!);
        var mine = Directory.CreateDirectory(s["b"]).FullName;
        File.WriteAllText(Path.Combine(mine, name), "not a cache");
        var ex = Assert.Throws<OutputRefusedException>(() => new KeyValueCache(4, c, TensorDType.F16, 0, mine, "identity"));
        Assert.Contains(name, ex.Message);
        Assert.Equal("not a cache", File.ReadAllText(Path.Combine(mine, name)));
        // our own stale cache there is rebuilt
        using (var stale = new KeyValueCache(4, c, TensorDType.F16, 0, s["a"], "identity")) Assert.True(File.Exists(stale.FilePath));
    }

    [Fact]
    public void FeaturizeRefusesToOverwriteAFileItDidNotWrite()
    {
        using var job = new Job();
        var backbone = TinyBackbone();
        var vqt = Trainer.Train(backbone, new ColourSquares(12, 1), null, new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 1 },
            new TrainingOptions { Epochs = 1, BatchSize = 4, ValidationFraction = 0 });
        var adapterDir = job.S["vqt"];
        vqt.Adapter.Save(adapterDir);
        var precious = job.S["results.safetensors"];
        SafeTensorsFile.Write(precious, new Dictionary<string, Tensor> { ["mine"] = new([3]) });
        var before = File.ReadAllBytes(precious);
        string[] args = ["featurize", "--model", job.Checkpoint, "--adapter", adapterDir, "--data", job.Data, "--out", precious];
        var run = RunCli(args);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(precious, run.Stderr);
        Assert.Equal(before, File.ReadAllBytes(precious));
        var ours = job.S["features.safetensors"];
        Assert.Equal(0, RunCli([.. args[..^1], ours]).ExitCode);
        Assert.Equal(0, RunCli([.. args[..^1], ours]).ExitCode);   // a features file of ours is replaced
    }

    [Fact]
    public void PlotsAreOursBesideAnAdapterAndNeverReplaceAUsersImage()
    {
        using var job = new Job();
        var adapter = job.S["adapter"];
        Assert.Equal(0, RunCli(job.Train(adapter, "--plot", "true")).ExitCode);
        Assert.True(File.Exists(Path.Combine(adapter, "training_curve.png")));
        var again = RunCli(job.Train(adapter, "--plot", "true", "--seed", "2"));   // an adapter folder with its plots is ours
        Assert.True(again.ExitCode == 0, again.ToString());
        // a plot alone, or beside files we cannot prove ours, does not make a folder ours
        var lone = Directory.CreateDirectory(job.S["lone"]).FullName;
        File.Copy(Path.Combine(adapter, "training_curve.png"), Path.Combine(lone, "training_curve.png"));
        Assert.Throws<OutputRefusedException>(() => TinyAdapter().Save(lone));
        // evaluate --plot onto an image of the user's: refused before the evaluation, the image untouched
        var photo = job.S["holiday.png"];
        File.WriteAllBytes(photo, File.ReadAllBytes(TestPaths.Fixture("images", "png_RGB.png")));
        var before = File.ReadAllBytes(photo);
        var run = RunCli(["evaluate", "--model", job.Checkpoint, "--adapter", adapter, "--data", job.Data, "--plot", photo]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(photo, run.Stderr);
        Assert.DoesNotContain("accuracy", run.Stdout);
        Assert.Equal(before, File.ReadAllBytes(photo));
        var mine = job.S["confusion.png"];
        Assert.Equal(0, RunCli(["evaluate", "--model", job.Checkpoint, "--adapter", adapter, "--data", job.Data, "--plot", mine]).ExitCode);
        Assert.Equal(0, RunCli(["evaluate", "--model", job.Checkpoint, "--adapter", adapter, "--data", job.Data, "--plot", mine]).ExitCode);   // ours: replaced
        var decoded = MLNet.MemoryTokens.Imaging.ImageDecoder.Load(mine);   // our marker chunk keeps it a valid PNG
        Assert.Equal((900, 560), (decoded.Width, decoded.Height));
    }

    internal static Adapter TinyAdapter(int seed = 1)
    {
        var backbone = TinyBackbone();
        var model = new TuningOptions { Method = TuningMethod.HeadAndClassToken }.CreateModel(backbone.Model, 3, seed);
        return Adapter.From(model, backbone, new TuningOptions { Method = TuningMethod.HeadAndClassToken }, ["red", "green", "blue"], backbone.Preprocess);
    }
}
