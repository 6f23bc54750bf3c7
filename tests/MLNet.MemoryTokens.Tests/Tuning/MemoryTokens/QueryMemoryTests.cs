using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning.MemoryTokens;

/// <summary>VQT composed with memory tokens, both ways the queries can read (the originals and the memory, the default; the
/// originals only): logits, loss and all four trainable parts against PyTorch autograd and directional finite differences;
/// the choice recorded in the adapter, and an adapter written before it was recorded loading bit for bit as it did.</summary>
public class QueryMemoryTests
{
    static IReadOnlyDictionary<string, Tensor> F => Numerics.Parity("vqt.safetensors");

    static (QueryMemoryVit Model, int[] Labels, Tensor Images) Build(bool queriesReadMemory)
    {
        var backbone = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        var options = new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 3, QueryTokens = 2, QueriesReadMemory = queriesReadMemory };
        var model = (QueryMemoryVit)options.CreateModel(backbone, 4, 0);
        Assert.Equal(queriesReadMemory, model.QueriesReadMemory);
        F["memory.memory"].Data.CopyTo(model.Memory.Data, 0);
        F["queries"].Data.CopyTo(model.Queries.Data, 0);
        F["head.weight"].Data.CopyTo(model.HeadWeight.Data, 0);
        F["head.bias"].Data.CopyTo(model.HeadBias.Data, 0);
        return (model, F["labels"].Data.Select(v => (int)v).ToArray(), F["images"]);
    }

    [Theory]
    [InlineData(true, "memory")]         // the default: the queries read the originals and the memory
    [InlineData(false, "memory_skip")]   // QueriesReadMemory = false: the originals only
    public void GradientsMatchPyTorchAutogradAndFiniteDifferences(bool queriesReadMemory, string fixture)
    {
        var (model, labels, images) = Build(queriesReadMemory);
        string what = $"vqt+memory ({fixture})";
        Numerics.AssertClose(F[$"{fixture}.logits"].Data, model.Forward(images, keepForBackward: false).Data, 1e-4, 0, $"{what} logits");
        double loss = Numerics.Loss(model, images, labels, backward: true);
        Numerics.AssertClose(F[$"{fixture}.loss"].Data, [(float)loss], 1e-5, 0, $"{what} loss");
        Assert.Equal(["memory", "cls_token", "queries", "head.weight", "head.bias"], model.Parameters.Select(p => p.Name));
        foreach (var p in model.Parameters)
        {
            var expected = F[$"{fixture}.grad.{p.Name}"].Data;
            double scale = expected.Max(v => Math.Abs(v));
            Numerics.AssertClose(expected, p.Grad.Data, 1e-4 * scale + 1e-9, 1e-4, $"{what} d{p.Name}");
        }
        foreach (var p in model.Parameters)
            Numerics.AssertDirectionalDerivatives(p.Value.Data, (float[])p.Grad.Data.Clone(), () => Numerics.Loss(model, images, labels, backward: false), $"{what} d{p.Name}");
    }

    [Fact]
    public void ReadingTheMemoryIsADifferentModel()
    {
        // the two fixtures differ well beyond the tolerances above, so each test tells the settings apart
        Assert.True(Numerics.MaxAbsDiff(F["memory.logits"].Data, F["memory_skip.logits"].Data) > 0.05);
        var (reads, _, images) = Build(true);
        var (skips, _, _) = Build(false);
        Assert.True(Numerics.MaxAbsDiff(reads.Forward(images, false).Data, skips.Forward(images, false).Data) > 0.05);
    }

    static Backbone RandomBackbone() =>
        Backbone.Load(TestPaths.Fixture("parity", "vit_random.safetensors"), new BackboneOptions { Heads = 2, DropHead = true });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheAdapterRecordsWhichKeysTheQueriesReadAndLoadsAsTrained(bool queriesReadMemory)
    {
        var backbone = RandomBackbone();
        var options = new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 1, QueriesReadMemory = queriesReadMemory };
        var model = options.CreateModel(backbone.Model, 3, seed: 2);
        foreach (var p in model.Parameters) for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] += 0.3f * MathF.Sin(i + p.Name.Length);
        var dir = Path.Combine(Path.GetTempPath(), "mmt-vqtmem-" + Guid.NewGuid().ToString("N"));
        try
        {
            Adapter.From(model, backbone, options, ["x", "y", "z"], backbone.Preprocess).Save(dir);
            Assert.Contains($"\"queries_read_memory\": {(queriesReadMemory ? "true" : "false")}", File.ReadAllText(Path.Combine(dir, Adapter.ConfigFile)));
            var loaded = Adapter.Load(dir);
            Assert.Equal(queriesReadMemory, loaded.Config.QueriesReadMemory);
            var again = (QueryMemoryVit)loaded.CreateModel(backbone, dir);
            Assert.Equal(queriesReadMemory, again.QueriesReadMemory);
            var x = new Tensor([2, 3, 16, 16], Numerics.Random(2 * 3 * 16 * 16, 3));
            Assert.Equal(model.Forward(x, false).Data, again.Forward(x, false).Data);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void AnAdapterWrittenBeforeTheChoiceWasRecordedLoadsBitForBitAsBefore()
    {
        // written by main's engine at 35bf619 (reference/make_adapter_fixture.cs): no queries_read_memory field, and the logits
        // that engine gave, when the queries read the original tokens only
        var folder = TestPaths.Fixture("adapters", "vqt-memory-35bf619");
        Assert.DoesNotContain("queries_read_memory", File.ReadAllText(Path.Combine(folder, Adapter.ConfigFile)));
        var expected = SafeTensorsFile.Read(Path.Combine(folder, "expected.safetensors")).Tensors;
        var backbone = RandomBackbone();
        var adapter = Adapter.Load(folder);
        Assert.Null(adapter.Config.QueriesReadMemory);
        Assert.False(adapter.RecordedOptions([]).QueriesReadMemory);
        var model = (QueryMemoryVit)adapter.CreateModel(backbone, folder);
        Assert.False(model.QueriesReadMemory);
        var logits = model.Forward(expected["images"], keepForBackward: false);
        Assert.Equal(expected["logits"].Shape, logits.Shape);
        for (int i = 0; i < logits.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected["logits"].Data[i]) == BitConverter.SingleToInt32Bits(logits.Data[i]),
                $"logit [{i}]: {logits.Data[i]:G9}, the engine at 35bf619 gave {expected["logits"].Data[i]:G9}");
        // read as the default (queries reading the memory) the same tensors give other logits: the test sees the setting
        var asDefault = new Adapter(adapter.Config with { QueriesReadMemory = true }, adapter.Tensors).CreateModel(backbone, folder);
        Assert.True(Numerics.MaxAbsDiff(expected["logits"].Data, asDefault.Forward(expected["images"], false).Data) > 1e-3);
    }

    [Fact]
    public void TheConfigSchemaReadsTheFieldAsWrittenAndRefusesAWrongType()
    {
        var json = File.ReadAllText(TestPaths.Fixture("adapters", "vqt-memory-35bf619", Adapter.ConfigFile));
        (AdapterConfig Config, IReadOnlyList<string> Warnings) Read(string text) => AdapterConfigSchema.Read(System.Text.Encoding.UTF8.GetBytes(text), "x/adapter_config.json");
        string With(string field) => json.Replace("\"query_tokens\": 2,", $"\"query_tokens\": 2,\n  \"queries_read_memory\": {field},");
        Assert.Null(Read(json).Config.QueriesReadMemory);
        Assert.True(Read(With("true")).Config.QueriesReadMemory);
        Assert.False(Read(With("false")).Config.QueriesReadMemory);
        Assert.Empty(Read(With("false")).Warnings);
        var ex = Assert.Throws<InvalidDataException>(() => Read(With("\"yes\"")));
        Assert.Contains("field 'queries_read_memory' is a string, expected true or false", ex.Message);
        // another method's config with the field: read, and reported as ignored
        var memory = Read(With("false").Replace("\"method\": \"vqt_memory\"", "\"method\": \"memory\""));
        Assert.Contains(memory.Warnings, w => w.Contains("'queries_read_memory' applies to method 'vqt_memory' only"));
    }

    [Fact]
    public void SkippingTheMemoryIsRefusedForOtherMethodsAndNotWrittenByThem()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TuningOptions { Method = TuningMethod.Vqt, QueriesReadMemory = false }.Validate());
        Assert.Contains("applies to VQT + memory, not Vqt", ex.Message);
        new TuningOptions { Method = TuningMethod.VqtMemory, QueriesReadMemory = false }.Validate();
        var memory = new TuningOptions { Method = TuningMethod.Memory };
        var config = TuningMethods.Get(TuningMethod.Memory).DescribeAdapter(new AdapterConfig { Method = TuningMethod.Memory }, memory);
        Assert.Null(config.QueriesReadMemory);
        Assert.DoesNotContain("queries_read_memory", System.Text.Json.JsonSerializer.Serialize(config, Adapter.Json));
    }
}
