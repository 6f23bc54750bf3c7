using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;

/// <summary>VQT on TorchSharp behind the engine's interfaces: also serves its feature vectors (<see cref="IQueryFeatures"/>:
/// <c>mmt featurize</c>, the ML.NET featurizer).</summary>
public sealed class TorchQueryEngineModel(TorchQueryTunedVit model, IReadOnlyDictionary<string, bool>? weightDecay = null)
    : TorchEngineModel(model, weightDecay), IQueryFeatures
{
    TorchQueryTunedVit Vqt => (TorchQueryTunedVit)Model;
    public int HeadInput => Vqt.KeptFeatures?.Length ?? Vqt.FeatureDim;

    public MLNet.MemoryTokens.Tensor Features(MLNet.MemoryTokens.Tensor images)
    {
        BeforeForward();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return TorchTensors.ToEngine(Vqt.Features(TorchTensors.ToTorch(images, Vqt.Device)));
    }
}
