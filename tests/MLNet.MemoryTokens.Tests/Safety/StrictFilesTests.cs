using System.Text.Json.Nodes;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Adapter configs, adapter weights, checkpoints and training states are read strictly: what is missing, null,
/// mistyped, extra, non-finite or from another run is refused by name, never replaced by a default.</summary>
public class StrictFilesTests
{
    static string SavedAdapter(Scratch s, string name = "adapter", TuningMethod method = TuningMethod.Memory)
    {
        var backbone = TinyBackbone();
        var tuning = new TuningOptions { Method = method, MemoryTokens = 2 };
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

    [Fact]
    public void AWrongTypedFieldIsRefusedNamingItAndUnknownFieldsAreWarned()
    {
        using var s = new Scratch();
        var dir = SavedAdapter(s);
        EditConfig(dir, j => j["masked"] = "yes");
        var ex = Assert.Throws<InvalidDataException>(() => Adapter.Load(dir));
        Assert.Contains("'masked' is a string, expected true or false", ex.Message);
        EditConfig(dir, j => { j["masked"] = false; j["memory_tokenz"] = 3; });
        var loaded = Adapter.Load(dir);
        Assert.Contains(loaded.Warnings, w => w.Contains("'memory_tokenz'"));
        var ckpt = WriteCheckpoint(s["vit.safetensors"]);
        var run = RunCli(["evaluate", "--model", ckpt, "--adapter", dir, "--data", WriteColourFolder(s["data"], 6)]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("warning:", run.Stderr);
        Assert.Contains("memory_tokenz", run.Stderr);
    }

    [Fact]
    public void AFormatFromANewerVersionIsRefused()
    {
        using var s = new Scratch();
        var dir = SavedAdapter(s);
        EditConfig(dir, j => j["format"] = AdapterFiles.FormatPrefix + "2");
        Assert.Contains("newer", Assert.Throws<InvalidDataException>(() => Adapter.Load(dir)).Message);
    }

    [Fact]
    public void AdapterTensorsMissingExtraOrNonFiniteAreRefusedByName()
    {
        using var s = new Scratch();
        var backbone = TinyBackbone();
        var dir = SavedAdapter(s);
        var weights = Path.Combine(dir, Adapter.WeightsFile);
        var tensors = SafeTensorsFile.Read(weights).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        var meta = new Dictionary<string, string> { ["format"] = AdapterFiles.CurrentFormat };
        void WriteWith(Dictionary<string, Tensor> t) => SafeTensorsFile.Write(weights, t, meta);

        WriteWith(tensors.Where(kv => kv.Key != "cls_token").ToDictionary());
        Assert.Contains("'cls_token'", Assert.Throws<InvalidDataException>(() => Adapter.Load(dir).CreateModel(backbone, dir)).Message);
        WriteWith(new Dictionary<string, Tensor>(tensors) { ["lora_B"] = new([2]) });
        Assert.Contains("'lora_B'", Assert.Throws<InvalidDataException>(() => Adapter.Load(dir).CreateModel(backbone, dir)).Message);
        var poisoned = tensors["memory"].Clone();
        poisoned.Data[5] = float.NaN;
        WriteWith(new Dictionary<string, Tensor>(tensors) { ["memory"] = poisoned });
        var ex = Assert.Throws<CheckpointException>(() => Adapter.Load(dir));
        Assert.Contains("'memory'", ex.Message);
        Assert.Contains("element 5", ex.Message);
        Assert.True(float.IsNaN(Adapter.Load(dir, allowNonFiniteWeights: true).Tensors["memory"].Data[5]));
    }

    [Fact]
    public void NonFiniteWeightsInACheckpointAreRefusedUnlessAsked()
    {
        using var s = new Scratch();
        var sd = VisionTransformer.CreateRandom(TinyConfig(classes: 3), 1).Parameters.ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        sd["blocks.0.mlp.fc1.weight"].Data[7] = float.PositiveInfinity;
        var path = s["vit.safetensors"];
        SafeTensorsFile.Write(path, sd);
        var ex = Assert.Throws<CheckpointException>(() => Backbone.Load(path));
        Assert.Contains("'blocks.0.mlp.fc1.weight'", ex.Message);
        Assert.Contains(path, ex.Message);
        Assert.NotNull(Backbone.Load(path, new BackboneOptions { AllowNonFiniteWeights = true }));
        var image = s["a.ppm"];
        File.WriteAllBytes(image, Ppm(new ColourSquares(1, 1).Load(0)));
        var refused = RunCli(["predict", "--model", path, image]);
        Assert.True(refused.ExitCode == 1 && refused.Stderr.Contains("'blocks.0.mlp.fc1.weight'"), refused.ToString());
        var allowed = RunCli(["predict", "--model", path, "--allow-non-finite-weights", image]);
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
    }

    static TrainingOptions Resumable(string dir, int seed = 11) => new() { Epochs = 2, BatchSize = 8, LearningRate = 3e-3f, Seed = seed, ValidationFraction = 0, CheckpointDirectory = dir };

    public static TheoryData<string> Differences => ["seed", "data", "image size", "backbone", "method", "batch size"];

    [Fact]
    public void ATrainingStateWithAMissingOrNonFiniteTensorIsRefusedByName()
    {
        using var s = new Scratch();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var dir = s["ckpt"];
        using (var cts = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Resumable(dir) with
            {
                CancellationToken = cts.Token, Progress = new Sync(p => { if (p.Phase == "epoch") cts.Cancel(); }),
            }));
        var file = Directory.GetFiles(dir, "trainer_params.e1.safetensors").Single();
        var meta = SafeTensorsFile.ReadMetadata(file).ToDictionary();
        var tensors = SafeTensorsFile.Read(file).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        SafeTensorsFile.Write(file, tensors.Where(kv => kv.Key != "head.bias").ToDictionary(), meta);
        Assert.Contains("'head.bias'", Assert.Throws<InvalidDataException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Resumable(dir) with { Resume = true })).Message);
        tensors["memory"].Data[0] = float.NaN;
        SafeTensorsFile.Write(file, tensors, meta);
        var ex = Assert.Throws<InvalidDataException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Resumable(dir) with { Resume = true }));
        Assert.Contains("'memory'", ex.Message);
        Assert.Contains("NaN", ex.Message);
    }

    sealed class Sync(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
