using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.TorchSharp.Compute;

/// <summary>Visual Query Tuning on TorchSharp: <see cref="TorchQueryTunedVit"/>, trained from a key/value cache on the device
/// or in pinned host memory (<see cref="TorchQueryCacheStep"/>); a compressed adapter (kept features) loads and serves.</summary>
internal sealed class TorchQueryTuningCompute : TorchMethodCompute
{
    const string KeptFeatures = "kept_features";

    public override TuningMethod Method => TuningMethod.Vqt;

    protected override void Check(TuningOptions o)
    {
        if (o.KeepFeatureFraction < 1 || o.GroupLasso > 0)
            throw new NotSupportedException("VQT compression (keep-features < 1, group-lasso > 0) trains on the managed backend only; a compressed adapter then serves on either backend.");
        if (o.CacheDirectory is not null)
            throw new NotSupportedException("The TorchSharp backend keeps VQT's key/value cache in memory (on the device, or in pinned host memory past the cache budget), not in a file: leave the cache folder unset, or train on the managed backend.");
    }

    protected override TorchTunedModel Build(VisionTransformer backbone, TuningOptions o, int classes, IReadOnlyDictionary<string, Tensor> initial, int seed) =>
        new TorchQueryTunedVit(Frozen(backbone), classes, o.QueryTokens, o.QueryDropout, initial, Seeds.Mix(seed, 0xd209, 0));

    protected override TorchEngineModel Wrap(TorchTunedModel model, IReadOnlyDictionary<string, bool> weightDecay) => new TorchQueryEngineModel((TorchQueryTunedVit)model, weightDecay);

    public override ITrainingStep CreateTrainingStep(ITunedModel model, StepContext context) => new TorchQueryCacheStep(Engine(model), context);

    public override IEnumerable<KeyValuePair<string, Tensor>> AdapterExtras(ITunedModel model) =>
        Engine(model).Model is TorchQueryTunedVit { KeptFeatures: { } kept } ? [new(KeptFeatures, new Tensor([kept.Length], kept.Select(i => (float)i).ToArray()))] : [];

    /// <summary>A compressed adapter's head reads only the kept features: the model is rebuilt with that head before its tensors are copied in.</summary>
    public override void PrepareForAdapter(ITunedModel model, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var engine = Engine(model);
        if (tensors.TryGetValue(KeptFeatures, out var kept))
        {
            var vqt = (TorchQueryTunedVit)engine.Model;
            var initial = vqt.Trainable.ToDictionary(t => t.Name, t => t.Name == "head.weight"
                ? new Tensor([vqt.NumClasses, kept.Length]) : TorchTensors.ToEngine(t.Value));
            engine.Replace(new TorchQueryTunedVit(vqt.Backbone, vqt.NumClasses, vqt.QueryTokens, vqt.QueryDropout, initial, dropoutSeed: 0,
                kept.Data.Select(v => (int)v).ToArray()));
        }
        base.PrepareForAdapter(model, tensors);
    }
}
