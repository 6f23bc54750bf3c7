using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary>The backbone's integer inference (<see cref="VisionTransformer.InferencePrecision"/>): every method and family
/// close to fp32, fp32 untouched by it, training refusing it, the options that ask for it checked.</summary>
public class IntegerInferenceTests
{
    static readonly VitConfig Small = new() { ImageSize = 32, PatchSize = 8, Dim = 64, Depth = 3, Heads = 4, MlpDim = 128, NumClasses = 10 };

    public static TheoryData<string> Families() => ["plain", "layer-scale", "quick-gelu", "registers-gap"];

    static VitConfig Family(string name) => name switch
    {
        "layer-scale" => Small with { LayerScale = true },
        "quick-gelu" => Small with { Activation = VitActivation.QuickGelu, PreNorm = true, PatchBias = false },
        "registers-gap" => Small with { RegisterTokens = 2, GlobalPool = VitPooling.Average, FcNorm = true, ClassToken = false, NoEmbedClass = true },
        _ => Small,
    };

    static Tensor Images(int batch, int seed) => new([batch, 3, 32, 32], Numerics.Random(batch * 3 * 32 * 32, seed));

    /// <summary>max |a − b| relative to max |a|.</summary>
    static double Relative(Tensor a, Tensor b) => Numerics.MaxAbsDiff(a.Data, b.Data) / a.Data.Max(v => Math.Abs(v));

    [Theory]
    [MemberData(nameof(Families))]
    public void Int16LogitsFollowFp32AndInt8LessCloselyAndFp32IsUntouched(string family)
    {
        if (!QuantizedGemm.IsSupported) return;
        var vit = VisionTransformer.CreateRandom(Family(family), seed: 3);
        var x = Images(4, 5);
        var fp32 = vit.Forward(x).Clone();
        vit.InferencePrecision = InferencePrecision.Int16;
        var int16 = vit.Forward(x).Clone();
#pragma warning disable MMT0001
        vit.InferencePrecision = InferencePrecision.Int8;
#pragma warning restore MMT0001
        var int8 = vit.Forward(x).Clone();
        vit.InferencePrecision = InferencePrecision.Fp32;
        var again = vit.Forward(x);
        Assert.Equal(fp32.Data, again.Data);   // the integer paths leave fp32 bit for bit as it was
        double e16 = Relative(fp32, int16), e8 = Relative(fp32, int8);
        Assert.True(e16 < 2e-3, $"{family}: int16 logits differ from fp32 by {e16:P3} of their scale");
        Assert.True(e8 < 5e-2, $"{family}: int8 logits differ from fp32 by {e8:P3} of their scale");
        Assert.True(e16 * 4 < e8, $"{family}: int16 ({e16:G3}) is not clearly closer to fp32 than int8 ({e8:G3})");
        Assert.True(e16 > 0, "the int16 path did not run (identical to fp32)");
    }

    public static TheoryData<TuningOptions> Methods() =>
    [
        new TuningOptions { Method = TuningMethod.HeadAndClassToken },
        new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 3 },
        new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true },
        new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2 },
        new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 3 },
    ];

    [Theory]
    [MemberData(nameof(Methods))]
    public void EveryFrozenBackboneMethodServesInInt16CloseToFp32(TuningOptions options)
    {
        if (!QuantizedGemm.IsSupported) return;
        var vit = VisionTransformer.CreateRandom(Small with { NumClasses = 0 }, seed: 4);
        var model = options.CreateModel(vit, 5, seed: 2);
        var x = Images(3, 6);
        var fp32 = model.Forward(x, keepForBackward: false).Clone();
        vit.InferencePrecision = InferencePrecision.Int16;
        var int16 = model.Forward(x, keepForBackward: false).Clone();
        var trainingForward = model.Forward(x, keepForBackward: true);
        vit.InferencePrecision = InferencePrecision.Fp32;
        // a step that trains through the backbone (memory, VQT + memory) keeps its tape there: fp32 always; plain VQT reads the backbone without a tape
        // (its keys/values are computed once), which is why the trainer refuses a backbone set to integer inference
        if (options.Method == TuningMethod.Vqt) Assert.NotEqual(fp32.Data, trainingForward.Data);
        else Assert.Equal(fp32.Data, trainingForward.Data);
        double e = Relative(fp32, int16);
        Assert.True(e is > 0 and < 2e-3, $"{options.Method}: int16 logits differ from fp32 by {e:P3} of their scale");
    }

    [Fact]
    public void TrainingRefusesABackboneSetToIntegerInferenceAndIntegerComputeOptions()
    {
        if (!QuantizedGemm.IsSupported) return;
        var vit = VisionTransformer.CreateRandom(Small with { NumClasses = 0 }, seed: 1);
        var backbone = new Backbone(vit, new PreprocessConfig { InputSize = 32 }, "random", "test");
        var data = new ColourSquares(12, seed: 1);
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        vit.InferencePrecision = InferencePrecision.Int16;
        var e = Assert.Throws<ArgumentException>(() => Trainer.Train(backbone, data, null, tuning, new TrainingOptions { Epochs = 1, BatchSize = 4 }));
        Assert.Contains("Int16", e.Message);
        Assert.Contains("fp32", e.Message);
        vit.InferencePrecision = InferencePrecision.Fp32;
        var options = new TrainingOptions { Epochs = 1, Compute = new ComputeOptions { Precision = ComputePrecision.Int16 } };
        Assert.Contains("inference precision", Assert.Throws<ArgumentException>(options.Validate).Message);
        Assert.Throws<NotSupportedException>(() => new ComputeOptions { Backend = "torchsharp", Precision = ComputePrecision.Int16 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => vit.InferencePrecision = (InferencePrecision)7);
    }

    [Fact]
    public void AnAdapterServedWithInt16ComputeSetsTheBackbone()
    {
        if (!QuantizedGemm.IsSupported) return;
        var vit = VisionTransformer.CreateRandom(Small with { NumClasses = 0 }, seed: 2);
        var backbone = new Backbone(vit, new PreprocessConfig { InputSize = 32 }, "random", Backbone.ComputeFingerprint(vit.Parameters));
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var model = tuning.CreateModel(vit, 4, seed: 1);
        var adapter = Adapter.From(model, backbone, tuning, ["a", "b", "c", "d"], backbone.Preprocess);
        var x = Images(2, 9);
        var fp32 = adapter.CreateModel(backbone).Forward(x, keepForBackward: false).Clone();
        Assert.Equal(InferencePrecision.Fp32, vit.InferencePrecision);
        var served = adapter.CreateModel(backbone, compute: new ComputeOptions { Precision = ComputePrecision.Int16 });
        Assert.Equal(InferencePrecision.Int16, vit.InferencePrecision);
        double e = Relative(fp32, served.Forward(x, keepForBackward: false));
        Assert.True(e is > 0 and < 2e-3, $"int16 serving differs from fp32 by {e:P3}");
    }

    [Fact]
    public void IntegerWeightsFollowTheWeightsAfterInvalidation()
    {
        if (!QuantizedGemm.IsSupported) return;
        var vit = VisionTransformer.CreateRandom(Small, seed: 6);
        vit.InferencePrecision = InferencePrecision.Int16;
        var x = Images(2, 3);
        var before = vit.Forward(x).Clone();
        foreach (var t in vit.Parameters.Values)
            for (int i = 0; i < t.Length; i++) t.Data[i] *= 1.5f;
        vit.InvalidatePackedWeights();
        var after = vit.Forward(x).Clone();
        var fresh = new VisionTransformer(vit.Config, vit.Parameters) { InferencePrecision = InferencePrecision.Int16 }.Forward(x);
        Assert.Equal(fresh.Data, after.Data);
        Assert.NotEqual(before.Data, after.Data);
    }

    [Fact]
    public void AFullFineTuneServedInInt16RunsInInt16AndAnExplicitFp32ComputeSetsItBack()
    {
        // full fine-tuning serves from a copy of the backbone: the precision must reach the copy
        if (!QuantizedGemm.IsSupported) return;
        var vit = VisionTransformer.CreateRandom(Small with { NumClasses = 0 }, seed: 7);
        var backbone = new Backbone(vit, new PreprocessConfig { InputSize = 32 }, "random", Backbone.ComputeFingerprint(vit.Parameters));
        var tuning = new TuningOptions { Method = TuningMethod.Full };
        var trained = tuning.CreateModel(vit, 3, seed: 1);
        foreach (var p in trained.Parameters)
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] *= 1.1f;
        var adapter = Adapter.From(trained, backbone, tuning, ["a", "b", "c"], backbone.Preprocess);
        var x = Images(2, 4);
        var fp32 = adapter.CreateModel(backbone, compute: ComputeOptions.Managed).Forward(x, keepForBackward: false).Clone();
        var int16 = adapter.CreateModel(backbone, compute: new ComputeOptions { Precision = ComputePrecision.Int16 }).Forward(x, keepForBackward: false).Clone();
        double e = Relative(fp32, int16);
        Assert.True(e is > 0 and < 5e-3, $"a full fine-tune served in int16 differs from fp32 by {e:P3} (0: it ran in fp32)");
        adapter.CreateModel(backbone, compute: ComputeOptions.Managed);
        Assert.Equal(InferencePrecision.Fp32, vit.InferencePrecision);
    }

    [SharedFact]
    public void TheRealCheckpointGivesFp32sTop1OnEverySharedPhotoInInt16()
    {
        if (!QuantizedGemm.IsSupported) return;
        var backbone = Backbone.Load(Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors"));
        var photos = Directory.GetFiles(Path.Combine(TestPaths.Shared!, "testdata", "imagenet"), "*.JPEG").Order().ToArray();
        using var reader = new ImageFileBatches(photos, backbone.Preprocess, photos.Length);
        var x = reader.Read().Single().Images!;
        var fp32 = backbone.Model.Forward(x).Clone();
        backbone.Model.InferencePrecision = InferencePrecision.Int16;
        var int16 = backbone.Model.Forward(x);
        for (int i = 0; i < photos.Length; i++)
            Assert.Equal(Classification.TopK(fp32.Data.AsSpan(i * 1000, 1000), 1)[0], Classification.TopK(int16.Data.AsSpan(i * 1000, 1000), 1)[0]);
        Assert.True(Numerics.MaxAbsDiff(fp32.Data, int16.Data) < 0.1, $"logits differ by {Numerics.MaxAbsDiff(fp32.Data, int16.Data)}");
    }
}
