using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning;

/// <summary>The method table: one definition per method, adapter fields read back as written, options a method does not read
/// refused, and a second backend plugging in per method.</summary>
public class MethodTableTests
{
    [Fact]
    public void EveryMethodHasOneDefinitionFoundByItsName()
    {
        Assert.Equal(Enum.GetValues<TuningMethod>(), TuningMethods.All.Select(d => d.Method));
        Assert.Equal(TuningMethods.All.Count, TuningMethods.All.Select(d => d.Name).Distinct().Count());
        foreach (var d in TuningMethods.All) Assert.Same(d, TuningMethods.Find(d.Name));
        Assert.Null(TuningMethods.Find("no-such-method"));
        Assert.Equal(["full"], TuningMethods.All.Where(d => d.TrainsBackbone).Select(d => d.Name));
    }

    public static TheoryData<TuningOptions> Options() =>
    [
        new TuningOptions { Method = TuningMethod.HeadOnly },
        new TuningOptions { Method = TuningMethod.HeadAndClassToken },
        new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 3, TrainClassToken = false },
        new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true },
        new TuningOptions { Method = TuningMethod.Full },
        new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2, QueryDropout = 0.2f },
        new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 3, TrainClassToken = false },
        new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 1, QueryTokens = 1, QueriesReadMemory = false },
    ];

    [Theory]
    [MemberData(nameof(Options))]
    public void AnAdaptersConfigReadsBackAsTheOptionsItWasWrittenFrom(TuningOptions options)
    {
        var backbone = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        var method = TuningMethods.Get(options.Method);
        var config = method.DescribeAdapter(new AdapterConfig { Method = options.Method }, options);
        var read = method.ReadAdapter(config, []);
        static object Fields(AdapterConfig c) => (c.Method, c.MemoryTokens, c.Masked, c.TrainClassToken, c.QueryTokens, c.QueryDropout, c.Extends.Length, c.QueriesReadMemory);
        Assert.Equal(Fields(config), Fields(method.DescribeAdapter(new AdapterConfig { Method = options.Method }, read)));
        // the model built from what was read has the very parameters of the one built from the options
        var (a, b) = (options.CreateModel(backbone, 3, seed: 1), read.CreateModel(backbone, 3, seed: 1));
        Assert.Equal(a.Parameters.Select(p => (p.Name, p.Value.ShapeString)), b.Parameters.Select(p => (p.Name, p.Value.ShapeString)));
        foreach (var (p, q) in a.Parameters.Zip(b.Parameters)) Assert.Equal(p.Value.Data, q.Value.Data);
    }

    [Fact]
    public void OptionsOnlyAnotherMethodReadsAreRefused()
    {
        var masked = Assert.Throws<ArgumentException>(() => new TuningOptions { Method = TuningMethod.Vqt, Masked = true }.Validate());
        Assert.Contains("applies to memory tuning, not Vqt", masked.Message);
        var keep = Assert.Throws<ArgumentException>(() => new TuningOptions { Method = TuningMethod.Memory, KeepFeatureFraction = 0.5 }.Validate());
        Assert.Contains("Feature compression applies to VQT", keep.Message);
        new TuningOptions { Method = TuningMethod.Vqt, KeepFeatureFraction = 0.5 }.Validate();   // its own option
        new TuningOptions { Method = TuningMethod.Memory, Masked = true }.Validate();
    }

    sealed class RecordingCompute : IMethodCompute
    {
        public int Models;
        public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions options, int classes, int seed)
        {
            Models++;
            return TuningMethods.Get(options.Method).Managed.CreateModel(backbone, options, classes, seed);
        }
    }

    [Fact]
    public void AnotherBackendPlugsInPerMethodAndAnUnknownOneIsNamed()
    {
        var compute = new RecordingCompute();
        TuningMethods.RegisterCompute(TuningMethod.HeadAndClassToken, "test-backend", compute);
        Assert.Same(compute, TuningMethods.Compute(TuningMethod.HeadAndClassToken, "test-backend"));
        var model = TuningMethods.Compute(TuningMethod.HeadAndClassToken, "test-backend")
            .CreateModel(MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom(), new TuningOptions { Method = TuningMethod.HeadAndClassToken }, 2, 0);
        Assert.Equal(1, compute.Models);
        Assert.Equal(["cls_token", "head.weight", "head.bias"], model.Parameters.Select(p => p.Name));
        Assert.Same(TuningMethods.Get(TuningMethod.Vqt).Managed, TuningMethods.Compute(TuningMethod.Vqt));
        var ex = Assert.Throws<InvalidOperationException>(() => TuningMethods.Compute(TuningMethod.Vqt, "test-backend"));
        Assert.Contains("managed", ex.Message);
        Assert.Throws<ArgumentException>(() => TuningMethods.RegisterCompute(TuningMethod.Vqt, TuningMethods.ManagedBackend, compute));
    }
}
