using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Training;

/// <summary>The engine's optimizers (<see cref="MLNet.MemoryTokens.Training.AdamW"/>, <see cref="SgdMomentum"/>) as in-place tensor updates on the device:
/// the same formulas, the same weight-decay rule (<see cref="Optimizer.Decays"/>: matrices only) and the same state names
/// ("m/name", "v/name", "buf/name"), so a checkpoint written by either backend resumes on the other.</summary>
public abstract class TorchOptimizer : IDisposable
{
    protected readonly IReadOnlyList<(string Name, Parameter Value)> Parameters;
    protected readonly bool[] DecaysWeight;
    readonly Dictionary<string, torch.Tensor> _state = new();

    protected TorchOptimizer(IReadOnlyList<(string Name, Parameter Value)> parameters)
    {
        Parameters = parameters;
        // the engine's rule, asked of the engine (by name and rank) so the two never drift apart
        DecaysWeight = parameters.Select(p => Optimizer.Decays(new TrainableParameter(p.Name, new MLNet.MemoryTokens.Tensor(p.Value.shape.Select(_ => 1).ToArray()), new MLNet.MemoryTokens.Tensor([1])))).ToArray();
    }

    public long Steps { get; protected set; }

    protected torch.Tensor State(string name, Parameter like)
    {
        if (!_state.TryGetValue(name, out var t)) _state[name] = t = zeros_like(like).detach().DetachFromDisposeScope();   // lives as long as the optimizer
        return t;
    }

    /// <summary>State tensors by the engine's names, as engine tensors (for checkpoints).</summary>
    public IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> StateTensors()
    {
        foreach (var name in StateNames()) State(name.Name, name.Like);
        return _state.ToDictionary(kv => kv.Key, kv => TorchTensors.ToEngine(kv.Value));
    }

    /// <summary>Restores state saved by either backend; shapes must match.</summary>
    public void LoadState(IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> state, long steps)
    {
        using var _ = no_grad();
        foreach (var (name, like) in StateNames())
        {
            if (!state.TryGetValue(name, out var saved)) throw new InvalidDataException($"Optimizer state '{name}' is missing from the checkpoint.");
            if (!saved.Shape.Select(s => (long)s).SequenceEqual(like.shape)) throw new InvalidDataException($"Optimizer state '{name}' has shape {saved.ShapeString}, expected [{string.Join(", ", like.shape)}].");
            using var v = TorchTensors.ToTorch(saved, like.device);
            State(name, like).copy_(v);
        }
        Steps = steps;
    }

    protected abstract IEnumerable<(string Name, Parameter Like)> StateNames();

    /// <summary>One update with learning rate <paramref name="lr"/> from the parameters' gradients.</summary>
    public abstract void Step(float lr);

    public static TorchOptimizer Create(OptimizerKind kind, IReadOnlyList<(string Name, Parameter Value)> parameters, float weightDecay, float momentum = 0.9f) => kind switch
    {
        OptimizerKind.AdamW => new TorchAdamW(parameters, weightDecay),
        OptimizerKind.Sgd => new TorchSgd(parameters, momentum, weightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public void Dispose()
    {
        foreach (var t in _state.Values) t.Dispose();
        _state.Clear();
    }
}

/// <summary>AdamW as the engine: m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w·(1 − lr·λ) − lr·(m/bc₁)/(√(v/bc₂) + ε).</summary>
public sealed class TorchAdamW(IReadOnlyList<(string Name, Parameter Value)> parameters, float weightDecay, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    : TorchOptimizer(parameters)
{
    protected override IEnumerable<(string, Parameter)> StateNames() => Parameters.SelectMany(p => new[] { ("m/" + p.Name, p.Value), ("v/" + p.Name, p.Value) });

    public override void Step(float lr)
    {
        Steps++;
        float bc1 = 1f - MathF.Pow(beta1, Steps), bc2 = 1f - MathF.Pow(beta2, Steps);
        using var _ = no_grad();
        for (int i = 0; i < Parameters.Count; i++)
        {
            using var scope = NewDisposeScope();
            var (name, w) = Parameters[i];
            var g = w.grad;
            if (g is null) continue;
            var m = State("m/" + name, w); var v = State("v/" + name, w);
            m.mul_(beta1).add_(g, alpha: 1f - beta1);
            v.mul_(beta2).addcmul_(g, g, value: 1f - beta2);
            if (DecaysWeight[i]) w.mul_(1f - lr * weightDecay);
            w.sub_((m / bc1).div_((v / bc2).sqrt_().add_(eps)).mul_(lr));
        }
    }
}

/// <summary>SGD as the engine: d = g + λw (matrices); buf ← d on the first step, then μ·buf + d; w ← w − lr·buf.</summary>
public sealed class TorchSgd(IReadOnlyList<(string Name, Parameter Value)> parameters, float momentum, float weightDecay) : TorchOptimizer(parameters)
{
    protected override IEnumerable<(string, Parameter)> StateNames() => Parameters.Select(p => ("buf/" + p.Name, p.Value));

    public override void Step(float lr)
    {
        Steps++;
        using var _ = no_grad();
        for (int i = 0; i < Parameters.Count; i++)
        {
            using var scope = NewDisposeScope();
            var (name, w) = Parameters[i];
            var g = w.grad;
            if (g is null) continue;
            var d = DecaysWeight[i] && weightDecay != 0 ? g + w * weightDecay : g;
            var buf = State("buf/" + name, w);
            if (Steps == 1) buf.copy_(d); else buf.mul_(momentum).add_(d);
            w.sub_(buf * lr);
        }
    }
}

/// <summary>Global gradient-norm clipping as the engine's (norm summed in float64; scale max/(‖g‖ + 1e-6) when above).</summary>
public static class TorchGradientClipping
{
    public static double ClipGlobalNorm(IReadOnlyList<(string Name, Parameter Value)> parameters, float maxNorm)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var grads = parameters.Select(p => p.Value.grad).Where(g => g is not null).Select(g => g!).ToArray();
        if (grads.Length == 0) return 0;
        double norm = Math.Sqrt(stack(grads.Select(g => g.to(ScalarType.Float64).square().sum()).ToArray()).sum().item<double>());
        if (maxNorm > 0 && norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            foreach (var g in grads) g.mul_(scale);
        }
        return norm;
    }
}
