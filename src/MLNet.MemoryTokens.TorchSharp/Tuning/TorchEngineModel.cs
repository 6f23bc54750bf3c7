using System.Numerics.Tensors;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tuning;

/// <summary>A TorchSharp model behind the engine's <see cref="ITunedModel"/>: what this backend's computes return to the method
/// table, so the engine's trainer, adapters, evaluation and serving drive it unchanged. <see cref="Parameters"/> are host
/// copies under the adapter names, with the engine's weight-decay flags.</summary>
/// <remarks>
/// Where the values live:
/// <list type="bullet">
/// <item>Host mode (a fresh model): the host copies are the values, as <see cref="ITunedModel"/> promises — each
/// <see cref="Forward"/> copies them to the device, and <see cref="Backward"/> adds the device gradients into the host ones (so
/// the engine's own optimizer trains it).</item>
/// <item>Device-resident (once a device optimizer, <see cref="Training.TorchOptimizer"/>, takes it over, or an adapter was loaded
/// into it): the device tensors are the values and nothing crosses per step but the images, the logits and their gradient;
/// the optimizer copies the values back to the host copies when a checkpoint or an adapter reads them.</item>
/// </list>
/// One call at a time (as every <see cref="ITunedModel"/>). Dispose it to free the device memory at once.
/// </remarks>
public class TorchEngineModel : ITunedModel, IDisposable
{
    readonly IReadOnlyDictionary<string, bool> _weightDecay;
    TrainableParameter[] _parameters;
    torch.Tensor? _logits;
    bool _pushPending;

    /// <param name="weightDecay">Each trainable tensor's weight-decay flag, by name, as the engine's model of the method sets it.</param>
    public TorchEngineModel(TorchTunedModel model, IReadOnlyDictionary<string, bool>? weightDecay = null)
    {
        Model = model;
        _weightDecay = weightDecay ?? new Dictionary<string, bool>();
        _parameters = HostCopies();
    }

    /// <summary>The TorchSharp model (its trainable tensors are on <see cref="TorchTunedModel.Device"/>).</summary>
    public TorchTunedModel Model { get; private set; }
    public int NumClasses => Model.NumClasses;
    public IReadOnlyList<TrainableParameter> Parameters => _parameters;
    /// <summary>True once the device tensors are the values (see the remarks).</summary>
    public bool DeviceResident { get; private set; }

    TrainableParameter[] HostCopies() => Model.Trainable.Select(t =>
    {
        var value = TorchTensors.ToEngine(t.Value);
        return new TrainableParameter(t.Name, value) { WeightDecay = _weightDecay.TryGetValue(t.Name, out var d) ? d : value.Rank >= 2 };
    }).ToArray();

    /// <summary>Makes the device tensors the values from now on (a device optimizer calls it): the host values are copied
    /// over once, first.</summary>
    internal void MakeDeviceResident()
    {
        if (!DeviceResident || _pushPending) CopyFromHost();
        DeviceResident = true;
        _pushPending = false;
    }

    /// <summary>The host values will be written once (an adapter's tensors, right after): copy them to the device at the next
    /// forward, then keep the device tensors as the values.</summary>
    internal void ExpectHostValuesOnce()
    {
        DeviceResident = true;
        _pushPending = true;
    }

    /// <summary>Replaces the TorchSharp model (same device; e.g. VQT's head over the kept features of an adapter) and its host copies.</summary>
    internal void Replace(TorchTunedModel model)
    {
        if (!ReferenceEquals(model, Model)) Model.Dispose();
        Model = model;
        _parameters = HostCopies();
    }

    /// <summary>Device values → host copies.</summary>
    public void CopyToHost()
    {
        for (int i = 0; i < _parameters.Length; i++) TorchTensors.ToEngine(Model.Trainable[i].Value).Data.CopyTo(_parameters[i].Value.Data, 0);
    }

    /// <summary>Host copies → device values.</summary>
    public void CopyFromHost()
    {
        using var _ = no_grad();
        for (int i = 0; i < _parameters.Length; i++)
        {
            using var v = TorchTensors.ToTorch(_parameters[i].Value, Model.Device);
            Model.Trainable[i].Value.copy_(v);
        }
    }

    /// <summary>Before the device tensors are read: in host mode (or once after an adapter load) the host values go over.</summary>
    protected void BeforeForward()
    {
        if (!DeviceResident || _pushPending) CopyFromHost();
        _pushPending = false;
    }

    public MLNet.MemoryTokens.Tensor Forward(MLNet.MemoryTokens.Tensor images, bool keepForBackward)
    {
        if (!keepForBackward)
        {
            BeforeForward();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return TorchTensors.ToEngine(Model.Forward(TorchTensors.ToTorch(images, Model.Device), training: false));
        }
        return ForwardWithGraph(() => Model.Forward(TorchTensors.ToTorch(images, Model.Device), training: true));
    }

    /// <summary>Runs <paramref name="logits"/> (a forward with a graph to the trainable tensors, in its own dispose scope: only
    /// the logits outlive it, autograd keeps what backward needs), keeps the logits for <see cref="Backward"/> and returns them
    /// on the host. A training step that feeds the model from its own cache uses this.</summary>
    public MLNet.MemoryTokens.Tensor ForwardWithGraph(Func<torch.Tensor> logits)
    {
        BeforeForward();
        _logits?.Dispose();
        _logits = null;
        if (!DeviceResident) foreach (var (_, p) in Model.Trainable) p.grad?.zero_();   // host mode accumulates on the host
        using (var scope = NewDisposeScope()) _logits = scope.MoveToOuter(logits());
        return TorchTensors.ToEngine(_logits);
    }

    /// <summary>Autograd from dLoss/dLogits [B, C] of the last forward: the gradients accumulate on the device (device-resident)
    /// or are added into the host copies' gradients (host mode).</summary>
    public void Backward(MLNet.MemoryTokens.Tensor dLogits)
    {
        if (_logits is null) throw new InvalidOperationException("Backward needs a forward with keepForBackward = true first.");
        if (!dLogits.Shape.Select(s => (long)s).SequenceEqual(_logits.shape))
            throw new ArgumentException($"dLogits must be [{string.Join(", ", _logits.shape)}], got {dLogits.ShapeString}.");
        using (var d = TorchTensors.ToTorch(dLogits, Model.Device)) _logits.backward([d]);
        _logits.Dispose();
        _logits = null;
        if (DeviceResident) return;
        for (int i = 0; i < _parameters.Length; i++)
        {
            using var g = Model.Trainable[i].Value.grad;
            if (g is null) continue;
            var acc = _parameters[i].Grad.Data;
            TensorPrimitives.Add(acc, TorchTensors.ToEngine(g).Data, acc);
        }
    }

    public void Dispose()
    {
        _logits?.Dispose();
        _logits = null;
        Model.Backbone.Dispose();
        Model.Dispose();
        GC.SuppressFinalize(this);
    }
}
