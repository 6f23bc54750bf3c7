using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Training;

/// <summary>The engine's optimizers (<see cref="MLNet.MemoryTokens.Training.AdamW"/>, <see cref="SgdMomentum"/>) as in-place tensor updates on the device,
/// with the engine's global-norm clipping: the same formulas, the same weight-decay flags (each parameter's
/// <see cref="TrainableParameter.WeightDecay"/>, as the method's engine model sets it) and the same state names ("m/name",
/// "v/name", "buf/name"), so a checkpoint written by either backend resumes on the other. The engine's trainer drives it as
/// any <see cref="Optimizer"/>: it clears, clips and steps the device tensors, and copies the values to the host copies when a
/// checkpoint or the adapter reads them.</summary>
public abstract class TorchOptimizer : Optimizer
{
    readonly TorchEngineModel _model;
    readonly bool[] _decays;
    readonly Dictionary<string, torch.Tensor> _state = new();

    protected TorchOptimizer(TorchEngineModel model)
    {
        _model = model;
        _decays = model.Parameters.Select(Decays).ToArray();
        model.MakeDeviceResident();
    }

    /// <summary>The device tensors, in the engine's order.</summary>
    protected IReadOnlyList<(string Name, Parameter Value)> Trainable => _model.Model.Trainable;
    protected bool DecaysWeight(int i) => _decays[i];

    protected torch.Tensor StateOf(string name, Parameter like)
    {
        if (!_state.TryGetValue(name, out var t)) _state[name] = t = zeros_like(like).detach().DetachFromDisposeScope();   // lives as long as the optimizer
        return t;
    }

    protected abstract IEnumerable<(string Name, Parameter Like)> StateNames();

    /// <summary>State tensors by the engine's names, as host copies (for checkpoints).</summary>
    public override IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> State =>
        StateNames().ToDictionary(s => s.Name, s => TorchTensors.ToEngine(StateOf(s.Name, s.Like)));

    /// <summary>Restores state saved by either backend; shapes must match.</summary>
    public override void LoadState(IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> state, long steps)
    {
        using var _ = no_grad();
        foreach (var (name, like) in StateNames())
        {
            if (!state.TryGetValue(name, out var saved)) throw new InvalidDataException($"Optimizer state '{name}' is missing from the checkpoint.");
            if (!saved.Shape.Select(s => (long)s).SequenceEqual(like.shape)) throw new InvalidDataException($"Optimizer state '{name}' has shape {saved.ShapeString}, expected [{string.Join(", ", like.shape)}].");
            using var v = TorchTensors.ToTorch(saved, like.device);
            StateOf(name, like).copy_(v);
        }
        Steps = steps;
    }

    public override void ClearGradients(IReadOnlyList<TrainableParameter> parameters)
    {
        foreach (var (_, p) in Trainable) p.grad?.zero_();
    }

    /// <summary>Global-norm clipping as the engine's (norm summed in float64; scale max/(‖g‖ + 1e-6) when above).</summary>
    public override double ClipGradients(IReadOnlyList<TrainableParameter> parameters, float maxNorm)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var grads = Trainable.Select(p => p.Value.grad).Where(g => g is not null).Select(g => g!).ToArray();
        if (grads.Length == 0) return 0;
        double norm = Math.Sqrt(stack(grads.Select(g => g.to(ScalarType.Float64).square().sum()).ToArray()).sum().item<double>());
        if (maxNorm > 0 && norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            foreach (var g in grads) g.mul_(scale);
        }
        return norm;
    }

    public override void Step(IReadOnlyList<TrainableParameter> parameters, float learningRate)
    {
        Steps++;
        using var _ = no_grad();
        for (int i = 0; i < Trainable.Count; i++)
        {
            using var scope = NewDisposeScope();
            var (name, w) = Trainable[i];
            if (w.grad is { } g) Update(i, name, w, g, learningRate);
        }
    }

    /// <summary>One parameter's update (under no_grad, in a dispose scope).</summary>
    protected abstract void Update(int index, string name, Parameter w, torch.Tensor g, float lr);

    public override void CopyParametersToHost() => _model.CopyToHost();
    public override void CopyParametersFromHost() => _model.CopyFromHost();

    public static TorchOptimizer Create(OptimizerKind kind, TorchEngineModel model, float weightDecay, float momentum = 0.9f) => kind switch
    {
        OptimizerKind.AdamW => new TorchAdamW(model, weightDecay),
        OptimizerKind.Sgd => new TorchSgd(model, momentum, weightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}

/// <summary>AdamW as the engine: m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w·(1 − lr·λ) − lr·(m/bc₁)/(√(v/bc₂) + ε).</summary>
public sealed class TorchAdamW(TorchEngineModel model, float weightDecay, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f) : TorchOptimizer(model)
{
    protected override IEnumerable<(string, Parameter)> StateNames() => Trainable.SelectMany(p => new[] { ("m/" + p.Name, p.Value), ("v/" + p.Name, p.Value) });

    protected override void Update(int index, string name, Parameter w, torch.Tensor g, float lr)
    {
        float bc1 = 1f - MathF.Pow(beta1, Steps), bc2 = 1f - MathF.Pow(beta2, Steps);
        var m = StateOf("m/" + name, w); var v = StateOf("v/" + name, w);
        m.mul_(beta1).add_(g, alpha: 1f - beta1);
        v.mul_(beta2).addcmul_(g, g, value: 1f - beta2);
        if (DecaysWeight(index)) w.mul_(1f - lr * weightDecay);
        w.sub_((m / bc1).div_((v / bc2).sqrt_().add_(eps)).mul_(lr));
    }
}

/// <summary>SGD as the engine: d = g + λw (decayed parameters); buf ← d on the first step, then μ·buf + d; w ← w − lr·buf.</summary>
public sealed class TorchSgd(TorchEngineModel model, float momentum, float weightDecay) : TorchOptimizer(model)
{
    protected override IEnumerable<(string, Parameter)> StateNames() => Trainable.Select(p => ("buf/" + p.Name, p.Value));

    protected override void Update(int index, string name, Parameter w, torch.Tensor g, float lr)
    {
        var d = DecaysWeight(index) && weightDecay != 0 ? g + w * weightDecay : g;
        var buf = StateOf("buf/" + name, w);
        if (Steps == 1) buf.copy_(d); else buf.mul_(momentum).add_(d);
        w.sub_(buf * lr);
    }
}
