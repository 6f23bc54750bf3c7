using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Tuning;

namespace MLNet.MemoryTokens.TorchSharp.Compute;

/// <summary>Memory tokens on TorchSharp — plain, attention-masked and model extension (the earlier tasks' class tokens and
/// memory, frozen, on the device) — as <see cref="TorchAdaptedVit"/>, trained on images.</summary>
internal sealed class TorchMemoryTokensCompute : TorchMethodCompute
{
    public override TuningMethod Method => TuningMethod.Memory;

    protected override TorchTunedModel Build(VisionTransformer backbone, TuningOptions o, int classes, IReadOnlyDictionary<string, Tensor> initial, int seed)
    {
        var earlier = o.Extends.Select(a => (TorchTensors.ToTorch(a.Tensors["cls_token"], Device).DetachFromDisposeScope(),
            TorchTensors.ToTorch(a.Tensors["memory"], Device).DetachFromDisposeScope())).ToArray();
        return new TorchAdaptedVit(Frozen(backbone), classes, o.MemoryTokens, o.Masked, fullFineTune: false, queryTokens: 0, earlier, initial);
    }
}

/// <summary>VQT + memory tokens on TorchSharp: <see cref="TorchAdaptedVit"/> with query rows, trained on images.</summary>
internal sealed class TorchQueryMemoryCompute : TorchMethodCompute
{
    public override TuningMethod Method => TuningMethod.VqtMemory;

    protected override TorchTunedModel Build(VisionTransformer backbone, TuningOptions o, int classes, IReadOnlyDictionary<string, Tensor> initial, int seed) =>
        new TorchAdaptedVit(Frozen(backbone), classes, o.MemoryTokens, masked: false, fullFineTune: false, o.QueryTokens, [], initial, o.QueriesReadMemory);
}
