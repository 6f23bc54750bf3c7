using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tuning;

/// <summary>A TorchSharp backbone with the trainable parts of one method, named as in the engine's adapter files
/// (<c>memory</c>, <c>cls_token</c>, <c>queries</c>, <c>head.weight</c>, <c>head.bias</c>, <c>backbone.*</c>): the
/// counterpart of the engine's <see cref="ITunedModel"/>, with autograd in place of a hand-written backward.</summary>
public abstract class TorchTunedModel : nn.Module
{
    protected TorchTunedModel(string name, TorchVit backbone, int numClasses) : base(name)
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "A task needs at least one class.");
        Backbone = backbone; NumClasses = numClasses;
    }

    public TorchVit Backbone { get; }
    public int NumClasses { get; }
    public Device Device => Backbone.Device;

    /// <summary>What the optimizer updates, by adapter tensor name, in the engine's order.</summary>
    public IReadOnlyList<(string Name, Parameter Value)> Trainable => _trainable;
    readonly List<(string, Parameter)> _trainable = new();

    /// <summary>Registers a trainable tensor under its adapter name (a copy of <paramref name="initial"/>, on the device).</summary>
    protected Parameter AddTrainable(string name, MLNet.MemoryTokens.Tensor initial)
    {
        var p = new Parameter(TorchTensors.ToTorch(initial, Device).DetachFromDisposeScope(), requires_grad: true);
        p.DetachFromDisposeScope();   // lives as long as the model
        _trainable.Add((name, p));
        if (!name.StartsWith("backbone.", StringComparison.Ordinal)) register_parameter(name.Replace('.', '_'), p);
        return p;
    }

    /// <summary>Registers one of the backbone's own parameters as trainable (full fine-tuning), as <c>backbone.</c> + its timm name.</summary>
    protected void AddTrainable(string name, Parameter p) => _trainable.Add((name, p));

    /// <summary>Logits [B, C] (float32) of normalised images [B, 3, S, S] on <see cref="Device"/>; <paramref name="training"/>
    /// turns on what only training does (VQT's query dropout). Gradients flow to <see cref="Trainable"/> when grad mode is on.</summary>
    public abstract torch.Tensor Forward(torch.Tensor images, bool training);

    /// <summary>The trained tensors as the engine's adapter holds them (copies, float32, on the CPU).</summary>
    public virtual Dictionary<string, MLNet.MemoryTokens.Tensor> AdapterTensors() => _trainable.ToDictionary(t => t.Item1, t => TorchTensors.ToEngine(t.Item2));

    /// <summary>Copies an adapter's tensors (or the engine's freshly initialised ones) into <see cref="Trainable"/>: every name must be
    /// there with its shape.</summary>
    public virtual void LoadAdapterTensors(IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> tensors, string where)
    {
        using var _ = no_grad();
        foreach (var (name, p) in _trainable)
        {
            if (!tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"Adapter '{where}' has no tensor '{name}' that this method needs.");
            if (!t.Shape.Select(s => (long)s).SequenceEqual(p.shape))
                throw new InvalidDataException($"Adapter '{where}': tensor '{name}' has shape {t.ShapeString}, the model needs [{string.Join(", ", p.shape)}].");
            using var v = TorchTensors.ToTorch(t, Device);
            p.copy_(v);
        }
    }

    /// <summary>Trainable values in total.</summary>
    public long TrainableCount => _trainable.Sum(t => t.Item2.numel());

    /// <summary>The head: logits = x Wᵀ + b in float32 (the head is tiny; keeping it in float32 keeps the loss exact under bf16).</summary>
    protected static torch.Tensor HeadLinear(torch.Tensor x, Parameter weight, Parameter bias) => nn.functional.linear(x.to(ScalarType.Float32), weight, bias);
}
