using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Native;

/// <summary>Moving the engine's plain tensors (shape + float[]) into TorchSharp and back, and strict state-dict loading.</summary>
public static class TorchTensors
{
    /// <summary>An engine tensor as a float32 TorchSharp tensor on <paramref name="device"/> (a copy).</summary>
    public static torch.Tensor ToTorch(MLNet.MemoryTokens.Tensor t, Device? device = null)
    {
        var x = torch.tensor(t.Data, t.Shape.Select(s => (long)s).ToArray(), ScalarType.Float32);
        if (device is null || device.type == DeviceType.CPU) return x;
        using (x) return x.to(device);
    }

    /// <summary>A TorchSharp tensor (any device, any float dtype) as an engine float32 tensor (a copy).</summary>
    public static MLNet.MemoryTokens.Tensor ToEngine(torch.Tensor t)
    {
        using var scope = NewDisposeScope();
        var cpu = t.detach().to(ScalarType.Float32).cpu().contiguous();
        return new MLNet.MemoryTokens.Tensor(cpu.shape.Select(s => checked((int)s)).ToArray(), cpu.data<float>().ToArray());
    }

    /// <summary>Copies <paramref name="source"/> into every parameter of <paramref name="module"/> by name, refusing missing,
    /// unexpected or mis-shaped tensors with one message that lists them all (as timm's strict load).</summary>
    public static void LoadStrict(nn.Module module, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> source, string what)
    {
        var problems = new List<string>();
        var names = new HashSet<string>();
        using (no_grad())
            foreach (var (name, p) in module.named_parameters())
            {
                names.Add(name);
                if (!source.TryGetValue(name, out var t)) { problems.Add($"missing '{name}'"); continue; }
                if (!t.Shape.Select(s => (long)s).SequenceEqual(p.shape)) { problems.Add($"'{name}' has shape {t.ShapeString}, expected [{string.Join(", ", p.shape)}]"); continue; }
                using var v = ToTorch(t);
                p.copy_(v);
            }
        foreach (var key in source.Keys)
            if (!names.Contains(key)) problems.Add($"unexpected '{key}'");
        if (problems.Count > 0) throw new ArgumentException($"The {what} state dict does not match: {string.Join("; ", problems)}.");
    }
}
