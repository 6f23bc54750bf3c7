using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Tuning;

/// <summary>A TorchSharp model behind the engine's <see cref="ITunedModel"/>: the seam a second backend plugs into the engine's
/// method table with (issue 11). <see cref="Parameters"/> are host copies under the adapter names; <see cref="Forward"/> pushes
/// them to the device (the engine's optimizer updated them on the host), runs the model and keeps its graph;
/// <see cref="Backward"/> runs autograd from dLoss/dLogits and adds the gradients into the host copies.</summary>
/// <remarks>Every step moves the trainable tensors and their gradients between host and device: right for memory tokens, VQT
/// and the baselines (thousands of values), costly for full fine-tuning on a GPU, which <see cref="Training.TorchTrainer"/>
/// runs with the optimizer on the device instead.</remarks>
public sealed class TorchEngineModel : ITunedModel, IDisposable
{
    public TorchTunedModel Model { get; }
    public int NumClasses => Model.NumClasses;
    public IReadOnlyList<TrainableParameter> Parameters { get; }
    torch.Tensor? _logits;

    public TorchEngineModel(TorchTunedModel model)
    {
        Model = model;
        Parameters = model.Trainable.Select(t =>
        {
            var value = TorchTensors.ToEngine(t.Value);
            return new TrainableParameter(t.Name, value, new MLNet.MemoryTokens.Tensor(value.Shape));
        }).ToArray();
    }

    public MLNet.MemoryTokens.Tensor Forward(MLNet.MemoryTokens.Tensor images, bool keepForBackward)
    {
        _logits?.Dispose();
        _logits = null;
        using (no_grad())
            for (int i = 0; i < Parameters.Count; i++)
            {
                using var v = TorchTensors.ToTorch(Parameters[i].Value, Model.Device);
                Model.Trainable[i].Value.copy_(v);
            }
        using var x = TorchTensors.ToTorch(images, Model.Device);
        if (!keepForBackward)
        {
            using var _ = no_grad();
            using var l = Model.Forward(x, training: false);
            return TorchTensors.ToEngine(l);
        }
        foreach (var (_, p) in Model.Trainable) p.grad?.zero_();
        _logits = Model.Forward(x, training: true);
        return TorchTensors.ToEngine(_logits);
    }

    public void Backward(MLNet.MemoryTokens.Tensor dLogits)
    {
        if (_logits is null) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        if (!dLogits.Shape.Select(s => (long)s).SequenceEqual(_logits.shape))
            throw new ArgumentException($"dLogits must be [{string.Join(", ", _logits.shape)}], got {dLogits.ShapeString}.");
        using (var d = TorchTensors.ToTorch(dLogits, Model.Device)) _logits.backward([d]);
        _logits.Dispose();
        _logits = null;
        for (int i = 0; i < Parameters.Count; i++)
        {
            using var g = Model.Trainable[i].Value.grad;
            if (g is null) continue;
            var host = TorchTensors.ToEngine(g).Data;
            var acc = Parameters[i].Grad.Data;
            System.Numerics.Tensors.TensorPrimitives.Add(acc, host, acc);
        }
    }

    public void Dispose()
    {
        _logits?.Dispose();
        Model.Dispose();
    }
}
