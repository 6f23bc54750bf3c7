using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.TorchSharp.Compute;

namespace MLNet.MemoryTokens.TorchSharp;

/// <summary>The TorchSharp backend in the method table: <see cref="Register"/> plugs this package's compute of every method in
/// under <see cref="Name"/>; then <c>TrainingOptions.Compute</c> / <see cref="Adapter.CreateModel"/> with
/// <c>new ComputeOptions { Backend = "torchsharp", Device = "cuda" }</c> train and serve on it, through the engine's own trainer.</summary>
public static class TorchSharpBackend
{
    /// <summary>The backend's name in the method table (<see cref="ComputeOptions.Backend"/>, <c>mmt --backend torchsharp</c>).</summary>
    public const string Name = "torchsharp";

    static readonly Lazy<TorchMethodCompute[]> Computes = new(() => typeof(TorchMethodCompute).Assembly.GetTypes()
        .Where(t => t.IsSubclassOf(typeof(TorchMethodCompute)) && !t.IsAbstract)
        .Select(t => (TorchMethodCompute)Activator.CreateInstance(t, nonPublic: true)!)
        .OrderBy(c => c.Method).ToArray());

    /// <summary>Registers this backend's compute of every method it has (idempotent; call once at start-up). LibTorch loads
    /// when a compute is first asked for a device, not here.</summary>
    public static void Register()
    {
        foreach (var compute in Computes.Value) TuningMethods.RegisterCompute(compute.Method, Name, compute.On);
    }

    /// <summary>The methods this backend computes.</summary>
    public static IReadOnlyList<TuningMethod> Methods => Computes.Value.Select(c => c.Method).ToArray();

    /// <summary>The compute options of this backend on <paramref name="device"/> (cpu | cuda | cuda:N | auto).</summary>
    public static ComputeOptions On(string device = "auto", ComputePrecision precision = ComputePrecision.Float32) =>
        new() { Backend = Name, Device = device, Precision = precision };

    /// <summary>The backbone itself (with its pretrained head) on this backend's device: <see cref="TorchVit.Predict"/> gives its logits.</summary>
    public static TorchVit Backbone(VisionTransformer backbone, ComputeOptions compute)
    {
        if (compute.Backend != Name) throw new ArgumentException($"These compute options name backend '{compute.Backend}', not {Name}.", nameof(compute));
        compute.Validate();
        return TorchVit.FromEngine(backbone, TorchBackend.ResolveDevice(compute.Device)).WithPrecision(compute.Precision);
    }

    /// <summary>A method's model on this backend, freshly initialised with the engine's starting tensors for <paramref name="seed"/>
    /// (registers the backend if needed). Dispose it to free device memory at once.</summary>
    public static TorchEngineModel CreateModel(Backbone backbone, TuningOptions tuning, int classes, int seed, ComputeOptions compute)
    {
        Register();
        tuning.Validate(backbone);
        return (TorchEngineModel)TuningMethods.Compute(tuning.Method, compute).CreateModel(backbone.Model, tuning, classes, seed);
    }

    /// <summary>An adapter folder's model on this backend (the engine's checks: backbone fingerprint, input size, extended adapters).</summary>
    public static TorchEngineModel Load(Adapter adapter, Backbone backbone, ComputeOptions compute, IReadOnlyList<Adapter>? extends = null, string? where = null)
    {
        Register();
        return (TorchEngineModel)adapter.CreateModel(backbone, where ?? adapter.Folder ?? "<adapter>", extends, compute);
    }
}
