using System.Diagnostics;
using System.Text.Json.Nodes;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>One test (or more) for each case reported under issue 10's "Why", written against the public API and the command
/// line as they were when the issue was filed, so that the same file builds against that code and fails there (see
/// docs/reliability.md, "Reported cases"). The other safety tests cover what the issue asked beyond these cases.</summary>
public class ReportedCasesTests
{
    static string SavedAdapter(Scratch s, string name = "adapter")
    {
        var backbone = TinyBackbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var model = tuning.CreateModel(backbone.Model, 3, 1);
        Adapter.From(model, backbone, tuning, ["red", "green", "blue"], backbone.Preprocess).Save(s[name]);
        return s[name];
    }

    static void EditConfig(string adapter, Action<JsonObject> edit)
    {
        var path = Path.Combine(adapter, Adapter.ConfigFile);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    static TrainingOptions Resumable(string dir, int seed = 11) => new() { Epochs = 2, BatchSize = 8, LearningRate = 3e-3f, Seed = seed, ValidationFraction = 0, CheckpointDirectory = dir };

    public static TheoryData<string> Differences => ["seed", "data", "image size", "backbone", "method", "batch size"];

    sealed class Sync(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    // ------------------------------------------------------------------ train --out deletes a folder recursively

    [Fact]
    public void TrainOutIntoAFolderOfDocumentsIsRefusedBeforeTrainingAndDeletesNothing()
    {
        using var job = new Job();
        var docs = Documents(job.S["documents"]);
        var before = Snapshot(docs);
        var run = RunCli(job.Train(docs));
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(docs, run.Stderr);
        Assert.True(run.Stderr.Contains("thesis.txt") || run.Stderr.Contains("'taxes'"), run.Stderr);   // the entry that is not ours is named
        Assert.DoesNotContain("epoch 1/1", run.Stdout);   // refused before the first epoch
        AssertSameTree(before, docs);
        Assert.Equal(["data", "documents", "vit.safetensors"], Directory.GetFileSystemEntries(job.S.Root).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void TrainOutDotIsRefusedAndTheWorkingFolderKept()
    {
        using var job = new Job();
        var cwd = Documents(job.S["cwd"]);
        var before = Snapshot(cwd);
        var run = RunCli(job.Train("."), workingDirectory: cwd);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("Refusing", run.Stderr);
        AssertSameTree(before, cwd);
    }

    // ------------------------------------------------------------------ --out writability was found only after all the training ran

    [ReadOnlyFolderFact]
    public void OutputWritabilityIsCheckedBeforeTraining()
    {
        using var job = new Job();
        var ro = Directory.CreateDirectory(job.S["readonly"]).FullName;
        Assert.True(ReadOnlyFolder.TryMake(ro));
        var run = RunCli(job.Train(Path.Combine(ro, "adapter")));
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(ro, run.Stderr);
        Assert.DoesNotContain("epoch 1/1", run.Stdout);   // found before training, not after it
    }

    // ------------------------------------------------------------------ an int overflow in attention's scratch size corrupted memory

    [Fact]
    public void PredictAtImageSize4096IsRefusedInsteadOfCorruptingMemory()
    {
        // nq·nk = 65,537² wrapped in int arithmetic and sized attention's scratch 131,073 floats: an access violation in the GEMM
        // of the first block (two blocks: the last one queries only the class token)
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(imageSize: 32, patch: 16, classes: 3, dim: 8, depth: 2, heads: 1));
        var image = s["a.ppm"];
        File.WriteAllBytes(image, Ppm(new ColourSquares(1, 1).Load(0)));
        var run = RunCli(["predict", "--model", ckpt, "--image-size", "4096", image], TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("4096", run.Stderr);
        Assert.Contains("beyond the limit", run.Stderr);
        Assert.DoesNotContain("   at ", run.Stderr);   // a message, not a stack trace
    }

    [Fact]
    public void AnEditedImageSizeInAnAdapterConfigIsRefusedInsteadOfCorruptingMemory()
    {
        // with image_size 4096 the backbone was resampled to 65,537 tokens and attention wrote past its scratch buffer
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(imageSize: 32, patch: 16, dim: 8, depth: 2, heads: 1));
        var backbone = Backbone.Load(ckpt, new BackboneOptions { DropHead = true });
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 1 };
        var dir = s["adapter"];
        Adapter.From(tuning.CreateModel(backbone.Model, 3, 1), backbone, tuning, ["red", "green", "blue"], backbone.Preprocess).Save(dir);
        EditConfig(dir, j => { j["image_size"] = 4096; j["preprocess"]!["input_size"] = 4096; });
        var image = s["a.ppm"];
        File.WriteAllBytes(image, Ppm(new ColourSquares(1, 1).Load(0)));
        var run = RunCli(["predict", "--model", ckpt, "--adapter", dir, image], TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("'image_size'", run.Stderr);
        Assert.Contains(Adapter.ConfigFile, run.Stderr);
    }

    // ------------------------------------------------------------------ an adapter_config.json with a required field missing loaded with defaults; a null field crashed

    [Theory]
    [InlineData("masked")]
    [InlineData("memory_tokens")]
    [InlineData("class_labels")]
    [InlineData("image_size")]
    [InlineData("extends")]
    [InlineData("backbone_fingerprint")]
    [InlineData("preprocess.mean")]
    public void ARequiredFieldMissingIsRefusedNamingTheFieldAndTheFile(string field)
    {
        using var s = new Scratch();
        var dir = SavedAdapter(s);
        EditConfig(dir, j =>
        {
            if (field.StartsWith("preprocess.")) j["preprocess"]!.AsObject().Remove(field["preprocess.".Length..]);
            else j.Remove(field);
        });
        var ex = Assert.Throws<InvalidDataException>(() => Adapter.Load(dir));
        Assert.Contains($"'{field}'", ex.Message);
        Assert.Contains(Path.Combine(dir, Adapter.ConfigFile), ex.Message);
        Assert.Contains("missing", ex.Message);
    }

    [Theory]
    [InlineData("class_labels")]
    [InlineData("method")]
    [InlineData("preprocess")]
    [InlineData("format")]
    public void ANullFieldIsRefusedNamingItNotANullReference(string field)
    {
        using var s = new Scratch();
        var dir = SavedAdapter(s);
        EditConfig(dir, j => j[field] = null);
        var ex = Assert.Throws<InvalidDataException>(() => Adapter.Load(dir));
        Assert.Contains($"'{field}' is null", ex.Message);
        // and the command line says so in one line, exit 1
        var ckpt = WriteCheckpoint(s["vit.safetensors"]);
        var run = RunCli(["evaluate", "--model", ckpt, "--adapter", dir, "--data", WriteColourFolder(s["data"], 6)]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains($"'{field}' is null", run.Stderr);
        Assert.DoesNotContain("NullReferenceException", run.Stderr);
    }

    // ------------------------------------------------------------------ --resume accepted another seed, data set, image size or backbone

    [Theory]
    [MemberData(nameof(Differences))]
    public void ResumeRefusesACheckpointOfAnotherRunNamingTheDifference(string what)
    {
        using var s = new Scratch();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        using (var cts = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Resumable(s["ckpt"]) with
            {
                CancellationToken = cts.Token, Progress = new Sync(p => { if (p.Phase == "epoch") cts.Cancel(); }),
            }));
        var backbone = what switch
        {
            "backbone" => TinyBackbone(seed: 99),
            "image size" => new Func<Backbone>(() =>
            {
                var path = WriteCheckpoint(s["vit.safetensors"]);
                return Backbone.Load(path, new BackboneOptions { ImageSize = 32, DropHead = true });
            })(),
            _ => TinyBackbone(),
        };
        var data = new ColourSquares(24, what == "data" ? 2 : 1);
        var options = Resumable(s["ckpt"], what == "seed" ? 12 : 11) with { Resume = true, BatchSize = what == "batch size" ? 4 : 8 };
        var t = what == "method" ? tuning with { Method = TuningMethod.HeadAndClassToken } : tuning;
        if (what == "image size")
        {
            // the same weights at another size: prove the checkpoint was written by a run of this backbone at 16 px first
            var first = Backbone.Load(s["vit.safetensors"], new BackboneOptions { DropHead = true });
            Assert.Equal(first.Fingerprint, backbone.Fingerprint);
            using var cts = new CancellationTokenSource();
            Directory.Delete(s["ckpt"], true);
            Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Train(first, data, null, tuning, Resumable(s["ckpt"]) with
            {
                CancellationToken = cts.Token, Progress = new Sync(p => { if (p.Phase == "epoch") cts.Cancel(); }),
            }));
        }
        var ex = Assert.Throws<InvalidDataException>(() => Trainer.Train(backbone, data, null, t, options));
        Assert.Contains(what == "data" ? "data set" : what, ex.Message);
        Assert.Contains("another run", ex.Message);
    }

    // ------------------------------------------------------------------ a checkpoint missing one tensor was reported without naming it

    [Fact]
    public void ACheckpointMissingOneTensorNamesIt()
    {
        using var s = new Scratch();
        var sd = VisionTransformer.CreateRandom(TinyConfig(depth: 3), 1).Parameters.Where(kv => kv.Key != "blocks.1.attn.qkv.weight").ToDictionary();
        var path = s["vit.safetensors"];
        SafeTensorsFile.Write(path, sd);
        var ex = Assert.Throws<CheckpointException>(() => Backbone.Load(path));
        Assert.Contains("missing 'blocks.1.attn.qkv.weight'", ex.Message);
        Assert.DoesNotContain("unexpected", ex.Message);
    }

    // ------------------------------------------------------------------ training that diverged without reaching NaN finished with exit 0 and replaced the previous adapter

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

    // ------------------------------------------------------------------ a one-class data set trained to "100 %"

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

    // ------------------------------------------------------------------ an out-of-range label silently widened the head

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

    // ------------------------------------------------------------------ predict read a FIFO or /dev/zero as a file (hang / out-of-memory trace)

    [Fact]
    public void PredictOnAFifoFailsFastNamingItInsteadOfHanging()
    {
        if (OperatingSystem.IsWindows()) return;
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(classes: 3));
        var fifo = Fifo(s["photo.jpg"]);
        var run = RunCli(["predict", "--model", ckpt, fifo], TimeSpan.FromSeconds(60));
        Assert.False(run.TimedOut, "predict hung on a FIFO");
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(fifo, run.Stderr);
        Assert.Contains("FIFO", run.Stderr);
    }

    [Fact]
    public void PredictOnDevZeroFailsFastInsteadOfRunningOutOfMemory()
    {
        if (!File.Exists("/dev/zero")) return;
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(classes: 3));
        var run = RunCli(["predict", "--model", ckpt, "/dev/zero"], TimeSpan.FromSeconds(60));
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("/dev/zero", run.Stderr);
        Assert.DoesNotContain("OutOfMemory", run.Stderr);
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    // ------------------------------------------------------------------ a symlink loop repeated images

    [Fact]
    public void ASymlinkLoopDoesNotRepeatImages()
    {
        using var s = new Scratch();
        Image(s, "data/cat/a.ppm", 0);
        Image(s, "data/cat/b.ppm", 1);
        Image(s, "data/dog/c.ppm", 2);
        Directory.CreateSymbolicLink(s["data/cat/again"], s["data/cat"]);     // cat/again → cat: a loop
        Directory.CreateSymbolicLink(s["data/dog/up"], s["data"]);            // dog/up → data: a loop through the root
        var ds = ImageDatasets.Open(s["data"]);
        Assert.Equal(["cat", "dog"], ds.ClassNames);
        Assert.Equal(3, ds.Count);
        // a link to a folder outside is followed: class folders may live elsewhere
        Image(s, "elsewhere/d.ppm", 3);
        Directory.CreateSymbolicLink(s["data/dog/more"], s["elsewhere"]);
        Assert.Equal(4, ImageDatasets.Open(s["data"]).Count);
    }

    // ------------------------------------------------------------------ nothing capped image size or token counts

    [Fact]
    public void ImageSizeAndTokenCountsAreCappedBeforeAnythingIsAllocated()
    {
        // each ran out of memory (here: the 1 GiB heap the child process gets) or corrupted it
        using var job = new Job();
        foreach (var extra in new[] { new[] { "--method", "memory", "--tokens", "100000" }, ["--method", "head-class", "--image-size", "2048"] })
        {
            var run = RunCli(["train", "--model", job.Checkpoint, "--data", job.Data, "--epochs", "1", "--batch", "4", "--out", job.S["adapter"], .. extra],
                TimeSpan.FromSeconds(120));
            Assert.True(run.ExitCode == 1, run.ToString());
            Assert.Contains("limit", run.Stderr);
            Assert.Contains(extra[^1], run.Stderr);
        }
    }

    // ------------------------------------------------------------------ NaN in a checkpoint's weights was accepted

    [Fact]
    public void NaNInACheckpointIsRefusedNamingTheTensor()
    {
        using var s = new Scratch();
        var sd = VisionTransformer.CreateRandom(TinyConfig(classes: 3), 1).Parameters.ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        sd["blocks.1.attn.proj.weight"].Data[3] = float.NaN;
        var path = s["vit.safetensors"];
        SafeTensorsFile.Write(path, sd);
        var ex = Assert.Throws<CheckpointException>(() => Backbone.Load(path));
        Assert.Contains("'blocks.1.attn.proj.weight'", ex.Message);
        var image = Image(s, "a.ppm");
        var run = RunCli(["predict", "--model", path, image]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("'blocks.1.attn.proj.weight'", run.Stderr);
    }
}
