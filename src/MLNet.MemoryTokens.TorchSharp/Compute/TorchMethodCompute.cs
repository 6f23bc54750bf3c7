using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.Tuning;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.TorchSharp;

namespace MLNet.MemoryTokens.TorchSharp.Compute;

/// <summary>How the TorchSharp backend computes one method (the method table's <see cref="IMethodCompute"/> for backend
/// <see cref="TorchSharpBackend.Name"/>), bound to a device and precision. Each method's folder defines one (as the engine's
/// method folders define their <see cref="TuningMethodDefinition"/>); <see cref="TorchSharpBackend.Register"/> finds them.</summary>
/// <remarks>Every model starts from the tensors the managed engine draws for the same seed (its own model of the method is
/// built and its tensors copied over, with their names and weight-decay flags), so both backends train from the same point and
/// write the same adapter fields.</remarks>
public abstract class TorchMethodCompute : IMethodCompute
{
    /// <summary>The method this computes.</summary>
    public abstract TuningMethod Method { get; }

    /// <summary>The device the models live on (set by <see cref="On"/>: an unbound compute has none, and LibTorch is not loaded
    /// until one is bound).</summary>
    public Device Device => _device ?? throw new InvalidOperationException("This compute is not bound to a device: ask the method table for it (TuningMethods.Compute with the backend's ComputeOptions).");
    Device? _device;
    public ComputePrecision Precision { get; private set; }

    /// <summary>This compute on the device and precision <paramref name="compute"/> names (LibTorch is loaded here, so a
    /// missing native library is reported before any work).</summary>
    public TorchMethodCompute On(ComputeOptions compute)
    {
        compute.Validate();
        var device = TorchBackend.ResolveDevice(compute.Device);
        var bound = (TorchMethodCompute)MemberwiseClone();
        bound._device = device;
        bound.Precision = compute.Precision;
        return bound;
    }

    /// <summary>Refuses options this backend does not compute (the message says which backend does).</summary>
    protected virtual void Check(TuningOptions options) { }

    /// <summary>The method's TorchSharp model from the engine's starting tensors (by adapter name).</summary>
    protected abstract TorchTunedModel Build(VisionTransformer backbone, TuningOptions options, int classes, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> initial, int seed);

    /// <summary>The engine-facing model around a built one (VQT's also serves features).</summary>
    protected virtual TorchEngineModel Wrap(TorchTunedModel model, IReadOnlyDictionary<string, bool> weightDecay) => new(model, weightDecay);

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions options, int classes, int seed)
    {
        Check(options);
        var engine = TuningMethods.Get(Method).Managed.CreateModel(backbone, options, classes, seed);
        var model = Build(backbone, options, classes, engine.Parameters.ToDictionary(p => p.Name, p => p.Value), seed);
        return Wrap(model, engine.Parameters.ToDictionary(p => p.Name, p => p.WeightDecay));
    }

    public virtual ITrainingStep CreateTrainingStep(ITunedModel model, StepContext context) => new TorchImageStep(Engine(model), context.Images);

    public virtual IEnumerable<KeyValuePair<string, MLNet.MemoryTokens.Tensor>> AdapterExtras(ITunedModel model) => [];

    /// <summary>The adapter's tensors are copied into the host copies right after: they go to the device at the first forward,
    /// and from then on the device holds the values (serving never copies them again).</summary>
    public virtual void PrepareForAdapter(ITunedModel model, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> tensors) => Engine(model).ExpectHostValuesOnce();

    /// <summary>The frozen backbone on the device.</summary>
    protected TorchVit Frozen(VisionTransformer backbone) => new(backbone.Config, backbone.Parameters, Device) { Precision = Precision };

    protected static TorchEngineModel Engine(ITunedModel model) => model as TorchEngineModel
        ?? throw new ArgumentException($"The TorchSharp backend was given a {model.GetType().Name}, not one of its own models: create the model with the same backend that trains or serves it.");
}
