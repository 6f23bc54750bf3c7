using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Training that goes wrong stops with a clear message and keeps what the user had; a data set that cannot make a
/// classifier is refused before training.</summary>
public class TrainingSafetyTests
{
    [Fact]
    public void TrainingThatDivergesWithoutNaNStopsNamesTheStepAndKeepsThePreviousAdapter()
    {
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"]);
        var data = WriteColourFolder(s["data"], count: 24);
        var adapter = s["adapter"];
        string[] Train(string lr) => ["train", "--model", ckpt, "--data", data, "--method", "head-class", "--epochs", "3", "--batch", "4", "--lr", lr,
            "--validation-fraction", "0", "--out", adapter];
        var good = RunCli(Train("3e-3"));
        Assert.True(good.ExitCode == 0, good.ToString());
        var before = Snapshot(adapter);
        // AdamW moves every weight by about the learning rate per step: at 1.0 the logits grow to tens, the loss with them, never NaN
        var bad = RunCli(Train("1"));
        Assert.True(bad.ExitCode == 2, bad.ToString());
        Assert.Matches(@"diverged at step \d+ \(epoch \d+, batch \d+\)", bad.Stderr);
        Assert.Contains("learning rate", bad.Stderr);
        Assert.Contains("Nothing was saved", bad.Stderr);
        AssertSameTree(before, adapter);
    }

    [Fact]
    public void TheGuardStopsASustainedRiseNotANoisyHealthyRun()
    {
        var healthy = new DivergenceGuard(classes: 3, factor: 3);
        var rng = new Random(1);
        for (int i = 0; i < 500; i++) healthy.Observe(Math.Max(0.05, 1.1 * Math.Exp(-i / 100.0) + rng.NextDouble() * 1.5), i + 1, 1, i + 1, 1e-3f);
        var guard = new DivergenceGuard(classes: 3, factor: 3);
        var ex = Assert.Throws<TrainingDivergedException>(() =>
        {
            for (int i = 0; i < 100; i++) guard.Observe(1.1 + 2.0 * i, i + 1, 1, i + 1, 1f);
        });
        // losses 1.1, 3.1, 5.1, …: smoothed 1.1, 1.30, 1.68, 2.22, 2.91, 3.73 — the first above 3 × ln 3 … 3 × 1.1 = 3.3 is step 6
        Assert.Contains("at step 6 (epoch 1, batch 6)", ex.Message);
    }

    [Fact]
    public void AOneClassDataSetIsRefusedBeforeTraining()
    {
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"]);
        var data = WriteColourFolder(s["data"], count: 8, classes: 1);
        var run = RunCli(["train", "--model", ckpt, "--data", data, "--epochs", "1", "--out", s["adapter"]]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("one class", run.Stderr);
        Assert.Contains("'red'", run.Stderr);
        Assert.False(Directory.Exists(s["adapter"]));
        // the library refuses it too, as it does a named class set where only one class has images
        var ex = Assert.Throws<InvalidDataException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(6, 1, classes: 1), null, new TuningOptions(), new TrainingOptions { Epochs = 1 }));
        Assert.Contains("at least two classes", ex.Message);
    }

    [Fact]
    public void AnOutOfRangeIdxLabelIsRefusedInsteadOfWideningTheHead()
    {
        using var s = new Scratch();
        byte[] Idx(int rank, int[] shape, byte[] data)
        {
            var b = new List<byte> { 0, 0, 8, (byte)rank };
            foreach (var d in shape) b.AddRange([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
            return [.. b, .. data];
        }
        File.WriteAllBytes(s["train-images-idx3-ubyte"], Idx(3, [3, 2, 2], new byte[12]));
        File.WriteAllBytes(s["train-labels-idx1-ubyte"], Idx(1, [3], [0, 57, 1]));
        var ex = Assert.Throws<InvalidDataException>(() => ImageDatasets.Open(s.Root));
        Assert.Contains("label 57 of image 1", ex.Message);
        Assert.Contains("classes.txt", ex.Message);
        // with the classes named, label 57 is a class like any other
        File.WriteAllLines(s["classes.txt"], Enumerable.Range(0, 58).Select(i => $"c{i}"));
        Assert.Equal(58, ImageDatasets.Open(s.Root).ClassNames.Count);
    }
}
