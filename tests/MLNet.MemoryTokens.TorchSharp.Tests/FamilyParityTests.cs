using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>Every backbone family the engine loads, on TorchSharp against the engine: the engine's family parity fixtures
/// (tests/fixtures/parity/families, written by reference/make_family_fixtures.py: DeiT-III, distilled DeiT, DINOv2 with and
/// without registers, OpenAI CLIP, GAP with fc_norm and without; patch sizes 4, 8 and 14) loaded as users load them, the
/// backbone's own logits (a distilled model's two heads averaged; also against the fixture's PyTorch logits) and pooled
/// output, and for every method the starting tensors, logits and gradients, and the masked multi-task pass.</summary>
public class FamilyParityTests
{
    public static readonly string[] Families = ["deit3", "deit_distilled", "dinov2", "dinov2_reg", "clip", "gap", "gap_norm"];

    static string Fixture(string name) => TestPaths.Fixture("parity", "families", name);

    /// <summary>The fixture's timm arguments (its metadata) and tensors (images, labels, PyTorch's outputs).</summary>
    static (JsonElement Config, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> Io) Io(string family)
    {
        var file = SafeTensorsFile.Read(Fixture($"{family}.io.safetensors"));
        return (JsonDocument.Parse(file.Metadata["config"]).RootElement, file.Tensors);
    }

    /// <summary>The family's backbone from its timm-layout weights, told what the weights cannot say (heads; QuickGELU for CLIP),
    /// as the engine's FamilyParityTests load it.</summary>
    static Backbone Load(string family)
    {
        var config = Io(family).Config;
        return Backbone.Load(Fixture($"{family}.safetensors"), new BackboneOptions
        {
            Heads = config.GetProperty("num_heads").GetInt32(),
            Activation = config.TryGetProperty("act", out var act) && act.GetString() == "quick_gelu" ? VitActivation.QuickGelu : null,
        });
    }

    static readonly (string Name, TuningOptions Options)[] MethodOptions =
    [
        ("memory", new() { Method = TuningMethod.Memory, MemoryTokens = 2 }),
        ("masked", new() { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true }),
        ("head", new() { Method = TuningMethod.HeadOnly }),
        ("head-class", new() { Method = TuningMethod.HeadAndClassToken }),
        ("full", new() { Method = TuningMethod.Full }),
        ("vqt", new() { Method = TuningMethod.Vqt, QueryTokens = 2, QueryDropout = 0 }),
        ("vqt-memory", new() { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 1 }),   // the queries read the memory (the default)
        ("vqt-memory-skip", new() { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 1, QueriesReadMemory = false }),
    ];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var family in Families)
            foreach (var (method, _) in MethodOptions)
                if (!(method == "head-class" && family.StartsWith("gap", StringComparison.Ordinal))) data.Add(family, method);   // no class token
        return data;
    }

    public static TheoryData<string> FamilyNames() => [.. Families];

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void BackboneLogitsEqualTheEngines(string family)
    {
        var backbone = Load(family);
        var io = Io(family).Io;
        var images = io["images"];
        using var vit = TorchVit.FromEngine(backbone.Model, CPU);
        var logits = vit.Predict(images);
        TinyModels.AssertClose(backbone.Model.Forward(images).Data, logits.Data, 1e-5, 1e-5, $"{family} backbone logits");
        TinyModels.AssertClose(io["logits"].Data, logits.Data, 1e-4, 0, $"{family} backbone logits vs PyTorch");
        // the pooled output a new head reads
        using var _ = no_grad();
        var expected = backbone.Model.ForwardHead(backbone.Model.ForwardFeatures(images), preLogits: true);
        using var x = TorchTensors.ToTorch(images);
        TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(vit.PreLogits(x)).Data, 1e-5, 1e-5, $"{family} pooled output");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MethodLogitsAndGradientsEqualTheEngines(string family, string method)
    {
        var backbone = Load(family);
        var tuning = MethodOptions.Single(m => m.Name == method).Options;
        const int classes = 3;
        var images = Io(family).Io["images"];
        var labels = TinyModels.Labels(images.Shape[0], classes, 3);
        var engine = tuning.CreateModel(backbone.Model, classes, seed: 7);
        using var torchModel = TinyModels.Torch(backbone, tuning, classes, seed: 7);
        Assert.Equal(engine.Parameters.Select(p => (p.Name, p.WeightDecay)), torchModel.Parameters.Select(p => (p.Name, p.WeightDecay)));

        var logitsE = engine.Forward(images, keepForBackward: true);
        var dLogits = new MLNet.MemoryTokens.Tensor(logitsE.Shape);
        CrossEntropy.Compute(logitsE.Data, labels, classes, 0.1f, dLogits.Data);
        engine.ZeroGrad();
        engine.Backward(dLogits);

        using var scope = NewDisposeScope();
        var model = torchModel.Model;
        var logitsT = model.Forward(TorchTensors.ToTorch(images), training: true);
        F.cross_entropy(logitsT, tensor(labels.Select(l => (long)l).ToArray()), label_smoothing: 0.1).backward();
        TinyModels.AssertClose(logitsE.Data, TorchTensors.ToEngine(logitsT).Data, 1e-5, 1e-5, $"{family} {method} logits");
        var grads = model.Trainable.ToDictionary(t => t.Name, t => TorchTensors.ToEngine(t.Value.grad ?? throw new InvalidOperationException($"no gradient for {t.Name}")));
        foreach (var p in engine.Parameters)
            TinyModels.AssertClose(p.Grad.Data, grads[p.Name].Data, 1e-7, 2e-4, $"{family} {method} gradient {p.Name}");
    }

    /// <summary>The masked multi-task pass on every family: the original head (its pooling, a distilled model's two heads) and
    /// two tasks in one forward, as the engine's.</summary>
    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void MultiTaskPassEqualsTheEngines(string family)
    {
        var backbone = Load(family);
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true };
        var tasks = Enumerable.Range(0, 2).Select(i =>
        {
            var m = tuning.CreateModel(backbone.Model, 3, seed: 20 + i);
            var rng = new Random(i);
            foreach (var p in m.Parameters) for (int k = 0; k < p.Value.Length; k++) p.Value.Data[k] += (float)(rng.NextDouble() - 0.5) * 0.2f;
            return ($"task{i}", Adapter.From(m, backbone, tuning, ["a", "b", "c"], backbone.Preprocess));
        }).ToList();
        var images = Io(family).Io["images"];
        var (origE, tasksE) = new MultiTaskVit(backbone, tasks).Forward(images);
        using var pass = new TorchMultiTaskVit(backbone, tasks, CPU);
        using var x = TorchTensors.ToTorch(images);
        var (origT, tasksT) = pass.Forward(x);
        TinyModels.AssertClose(origE!.Data, TorchTensors.ToEngine(origT!).Data, 1e-5, 1e-5, $"{family} multi-task original logits");
        for (int t = 0; t < 2; t++) TinyModels.AssertClose(tasksE[t].Data, TorchTensors.ToEngine(tasksT[t]).Data, 1e-5, 1e-5, $"{family} multi-task task {t} logits");
    }

    /// <summary>The trainer's steps that do not run the stream every time, on the families: the linear probe's cached pooled
    /// features, VQT's key/value cache (the pooled output beside it), and memory tokens for comparison: one epoch (two AdamW
    /// steps) on the shipped sample at the family's input size, both backends from the same seed, equal trained tensors.</summary>
    [Theory]
    [InlineData("dinov2_reg", "head")]
    [InlineData("dinov2_reg", "vqt")]
    [InlineData("deit_distilled", "head")]
    [InlineData("deit_distilled", "vqt")]
    [InlineData("gap", "head")]
    [InlineData("gap", "vqt")]
    [InlineData("clip", "vqt")]
    [InlineData("clip", "memory")]
    public void OneEpochOfTheTrainerEqualsTheEngines(string family, string method)
    {
        var backbone = Load(family);
        int size = backbone.Model.Config.ImageSize;
        var data = PreparedImages.From(ImageDatasets.Open(Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k")),
            new PreprocessConfig { InputSize = size, CropFraction = 1 }).Subset([.. Enumerable.Range(0, 32)]);
        var tuning = MethodOptions.Single(m => m.Name == method).Options;
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, LearningRate = 1e-3f, Seed = 5, ValidationFraction = 0 };
        var engine = Trainer.Train(backbone, data, null, tuning, options);
        var torch = Trainer.Train(backbone, data, null, tuning, options with { Compute = TinyModels.Cpu });
        using var _ = (IDisposable)torch.Model;
        Assert.True(Math.Abs(engine.History[0].TrainLoss - torch.History[0].TrainLoss) < 1e-4, $"{family} {method} epoch loss: engine {engine.History[0].TrainLoss}, TorchSharp {torch.History[0].TrainLoss}");
        Assert.Equal(engine.Adapter.Tensors.Keys.Order(), torch.Adapter.Tensors.Keys.Order());
        foreach (var (name, tensor) in engine.Adapter.Tensors)
            TinyModels.AssertClose(tensor.Data, torch.Adapter.Tensors[name].Data, 2e-4, 1e-4, $"{family} trainer, {method}: tensor {name} after one epoch");
    }
}
