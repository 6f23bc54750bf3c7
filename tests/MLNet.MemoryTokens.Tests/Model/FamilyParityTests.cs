using System.Text.Json;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.Baselines;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary>Every backbone family against the PyTorch reference (reference/make_family_fixtures.py): tiny random models in each
/// family's real layout and names — timm's, Hugging Face's, OpenCLIP's — loaded as users load them, their forward, and the
/// gradients of every tuning method.</summary>
public class FamilyParityTests
{
    public static readonly TheoryData<string> Families = new(["deit3", "deit_distilled", "dinov2", "dinov2_reg", "clip", "gap", "gap_norm"]);

    internal static string WeightsPath(string family, string layout = "") => TestPaths.Fixture("parity", "families", $"{family}{layout}.safetensors");

    internal static IReadOnlyDictionary<string, Tensor> Io(string family) => Numerics.Parity(Path.Combine("families", $"{family}.io.safetensors"));

    /// <summary>The family's timm arguments, as the fixture records them.</summary>
    internal static JsonElement Config(string family) =>
        JsonDocument.Parse(SafeTensorsFile.Read(TestPaths.Fixture("parity", "families", $"{family}.io.safetensors")).Metadata["config"]).RootElement;

    /// <summary>What the weights cannot tell, as a user gives it: heads, and QuickGELU for the CLIP tower.</summary>
    internal static BackboneOptions Options(string family, int? imageSize = null) => new()
    {
        Heads = Config(family).GetProperty("num_heads").GetInt32(),
        Activation = Config(family).TryGetProperty("act", out var act) && act.GetString() == "quick_gelu" ? VitActivation.QuickGelu : null,
        ImageSize = imageSize,
    };

    internal static Backbone Load(string family, string layout = "", int? imageSize = null) => Backbone.Load(WeightsPath(family, layout), Options(family, imageSize));

    static bool Flag(JsonElement c, string name, bool otherwise = false) => c.TryGetProperty(name, out var v) ? v.GetBoolean() : otherwise;

    [Theory]
    [MemberData(nameof(Families))]
    public void TheArchitectureIsReadOffTheWeights(string family)
    {
        var c = Config(family);
        var vit = Load(family).Model.Config;
        Assert.Equal(Flag(c, "class_token", true), vit.ClassToken);
        Assert.Equal(c.TryGetProperty("reg_tokens", out var r) ? r.GetInt32() : 0, vit.RegisterTokens);
        Assert.Equal(Flag(c, "distilled"), vit.DistillationToken);
        Assert.Equal(Flag(c, "no_embed_class"), vit.NoEmbedClass);
        Assert.Equal(Flag(c, "pre_norm"), vit.PreNorm);
        Assert.Equal(!Flag(c, "pre_norm"), vit.PatchBias);
        Assert.Equal(Flag(c, "qkv_bias", true), vit.QkvBias);
        Assert.Equal(c.TryGetProperty("init_values", out _), vit.LayerScale);
        bool avg = c.TryGetProperty("global_pool", out var gp) && gp.GetString() == "avg";
        Assert.Equal(avg ? VitPooling.Average : VitPooling.Token, vit.GlobalPool);
        Assert.Equal(avg && Flag(c, "fc_norm", true), vit.FcNorm);
        Assert.Equal(c.TryGetProperty("eps", out var eps) ? (float)eps.GetDouble() : 1e-6f, vit.LayerNormEps);
        Assert.Equal(c.GetProperty("patch_size").GetInt32(), vit.PatchSize);
        Assert.Equal(c.GetProperty("img_size").GetInt32(), vit.ImageSize);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void FeaturesPooledOutputAndLogitsMatchPyTorch(string family)
    {
        var vit = Load(family).Model;
        var io = Io(family);
        var features = vit.ForwardFeatures(io["images"]);
        Numerics.AssertClose(io["features"].Data, features.Data, 1e-4, 0, $"{family}: features");
        Numerics.AssertClose(io["pooled"].Data, vit.ForwardHead(features, preLogits: true).Data, 1e-4, 0, $"{family}: pooled");
        Numerics.AssertClose(io["logits"].Data, vit.ForwardHead(features).Data, 1e-4, 0, $"{family}: logits (ForwardHead)");
        // Forward takes only the rows the pooling reads past the last attention: the same logits up to rounding
        Numerics.AssertClose(io["logits"].Data, vit.Forward(io["images"]).Data, 1e-4, 0, $"{family}: logits");
    }

    public static readonly TheoryData<string, string> OtherLayouts = new()
    {
        { "dinov2", ".hf" }, { "dinov2_reg", ".hf" }, { "deit_distilled", ".hf" }, { "clip", ".hf" }, { "clip", ".openclip" },
    };

    [Theory]
    [MemberData(nameof(OtherLayouts))]
    public void HuggingFaceAndOpenClipLayoutsMapToTheTimmWeights(string family, string layout)
    {
        var timm = CheckpointReader.ReadTimmStateDict(WeightsPath(family));
        var mapped = CheckpointReader.ReadTimmStateDict(WeightsPath(family, layout), out var ignored);
        // a bare Dinov2Model has no head; everything else is the very same tensor (DINOv2 with registers: its class token
        // with pos[0] folded in, as timm converts it)
        var expected = family.StartsWith("dinov2") ? timm.Where(kv => !VitConfig.IsHeadWeight(kv.Key)).ToDictionary() : timm;
        Assert.Equal(expected.Keys.Order(), mapped.Keys.Order());
        foreach (var (key, t) in expected)
        {
            Assert.Equal(t.Shape, mapped[key].Shape);
            Assert.True(t.Data.AsSpan().SequenceEqual(mapped[key].Data), $"{family}{layout}: '{key}' differs from the timm weights");
        }
        Assert.Equal(family switch { "clip" => ["logit_scale"], "dinov2" or "dinov2_reg" => ["embeddings.mask_token"], _ => [] }, ignored);
        // loaded as a user would: QuickGELU is Hugging Face CLIP's default; OpenCLIP's layout needs it said (its LAION towers use GELU)
        var options = Options(family) with { Activation = layout == ".openclip" ? VitActivation.QuickGelu : null };
        var vit = Backbone.Load(WeightsPath(family, layout), options).Model;
        var io = Io(family);
        var pooled = vit.ForwardHead(vit.ForwardFeatures(io["images"]), preLogits: true);
        Numerics.AssertClose(io["pooled"].Data, pooled.Data, 1e-4, 0, $"{family}{layout}: pooled");
        if (vit.Config.NumClasses > 0) Numerics.AssertClose(io["logits"].Data, vit.Forward(io["images"]).Data, 1e-4, 0, $"{family}{layout}: logits");
    }

    [Fact]
    public void HuggingFaceClipDefaultsToQuickGeluAndOpenClipToGelu()
    {
        Assert.Equal(VitActivation.QuickGelu, Backbone.Load(WeightsPath("clip", ".hf"), new BackboneOptions { Heads = 2 }).Model.Config.Activation);
        Assert.Equal(VitActivation.Gelu, Backbone.Load(WeightsPath("clip", ".openclip"), new BackboneOptions { Heads = 2 }).Model.Config.Activation);
        Assert.Equal(1e-5f, Backbone.Load(WeightsPath("clip", ".hf"), new BackboneOptions { Heads = 2 }).Model.Config.LayerNormEps);
    }

    public static readonly TheoryData<string> Resampled = new(["dinov2", "dinov2_reg", "deit_distilled", "gap"]);

    [Theory]
    [MemberData(nameof(Resampled))]
    public void PositionEmbeddingResampledWithThePrefixSplitOffAsTimm(string family)
    {
        var io = Io(family);
        int size = io["resampled.images"].Shape[2];
        var vit = Load(family, imageSize: size).Model;
        Numerics.AssertClose(io["resampled.pos_embed"].Data, vit.Parameters["pos_embed"].Data, 1e-6, 1e-5, $"{family}: pos_embed resampled to {size}");
        Numerics.AssertClose(io["resampled.logits"].Data, vit.Forward(io["resampled.images"]).Data, 1e-4, 0, $"{family}: logits at {size}");
    }

    public static readonly TheoryData<string, string> Methods = MethodCases();

    static TheoryData<string, string> MethodCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var family in new[] { "deit3", "deit_distilled", "dinov2", "dinov2_reg", "clip", "gap", "gap_norm" })
            foreach (var method in new[] { "plain", "masked", "headcls", "vqt", "vqtmemory", "full" })
            {
                if (method == "headcls" && family.StartsWith("gap")) continue;                              // no class token
                if (method == "full" && family is not ("clip" or "gap" or "deit_distilled")) continue;     // the fixture's choice
                data.Add(family, method);
            }
        return data;
    }

    /// <summary>The method's model on the family's backbone, its trainable tensors set as the fixture started them.</summary>
    internal static ITunedModel Build(VisionTransformer vit, string method, IReadOnlyDictionary<string, Tensor> io)
    {
        const int classes = 4, memory = 3, queries = 2;
        void Set(Tensor? into, string key) => io[key].Data.CopyTo(into!.Data, 0);
        switch (method)
        {
            case "plain" or "masked":
            {
                var m = new MemoryTokenVit(vit, classes, new MemoryTokenOptions(memory, Masked: method == "masked"), seed: 0);
                Set(m.Memory, "memory"); Set(m.HeadWeight, "head.weight"); Set(m.HeadBias, "head.bias");
                if (method == "masked") Set(m.ClassToken, "masked.cls_init");
                return m;
            }
            case "headcls" or "full":
            {
                var m = new BaselineVit(method == "full" ? vit.Clone() : vit, classes, new BaselineOptions { TrainClassToken = method == "headcls", TrainBackbone = method == "full" }, seed: 0);
                Set(m.HeadWeight, "head.weight"); Set(m.HeadBias, "head.bias");
                return m;
            }
            case "vqt":
            {
                var m = new QueryTunedVit(vit, classes, queries, 0f, seed: 0);
                Set(m.Queries, "queries"); Set(m.HeadWeight, "vqt.head.weight"); Set(m.HeadBias, "vqt.head.bias");
                return m;
            }
            default:
            {
                var m = new QueryMemoryVit(vit, classes, memory, queries, trainClassToken: true, seed: 0);
                Set(m.Memory, "memory"); Set(m.Queries, "queries"); Set(m.HeadWeight, "vqt.head.weight"); Set(m.HeadBias, "vqt.head.bias");
                return m;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void EveryMethodsLogitsLossAndGradientsMatchPyTorchAutograd(string family, string method)
    {
        var io = Io(family);
        var model = Build(Load(family).Model, method, io);
        var images = io["images"];
        var labels = io["labels"].Data.Select(v => (int)v).ToArray();
        Numerics.AssertClose(io[$"{method}.logits"].Data, model.Forward(images, keepForBackward: false).Data, 1e-4, 0, $"{family} {method}: logits");
        double loss = Numerics.Loss(model, images, labels, backward: true);
        Assert.True(Math.Abs(loss - io[$"{method}.loss"].Data[0]) < 1e-5, $"{family} {method}: loss {loss} vs PyTorch {io[$"{method}.loss"].Data[0]}");
        var expectedNames = io.Keys.Where(k => k.StartsWith($"{method}.grad.", StringComparison.Ordinal)).Select(k => k[$"{method}.grad.".Length..]).Order().ToArray();
        Assert.Equal(expectedNames, model.Parameters.Select(p => p.Name).Order().ToArray());
        foreach (var p in model.Parameters)
        {
            var expected = io[$"{method}.grad.{p.Name}"].Data;
            double scale = expected.Max(v => Math.Abs(v));
            Numerics.AssertClose(expected, p.Grad.Data, 1e-4 * scale + 1e-9, 1e-4, $"{family} {method}: d{p.Name}");
        }
    }

    [Theory]
    [InlineData("gap", "full")]
    [InlineData("clip", "full")]
    [InlineData("deit_distilled", "plain")]
    [InlineData("dinov2_reg", "masked")]
    [InlineData("gap_norm", "vqtmemory")]
    public void GradientsMatchFiniteDifferences(string family, string method)
    {
        var io = Io(family);
        var model = Build(Load(family).Model, method, io);
        var images = io["images"];
        var labels = io["labels"].Data.Select(v => (int)v).ToArray();
        Numerics.Loss(model, images, labels, backward: true);
        foreach (var p in model.Parameters)
            Numerics.AssertDirectionalDerivatives(p.Value.Data, (float[])p.Grad.Data.Clone(), () => Numerics.Loss(model, images, labels, backward: false), $"{family} {method}: d{p.Name}");
    }
}

