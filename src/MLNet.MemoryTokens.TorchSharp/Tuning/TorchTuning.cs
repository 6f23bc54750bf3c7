using System.Text.Json;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Tuning;

/// <summary>Builds TorchSharp models for each <see cref="TuningMethod"/>: freshly initialised with the engine's own init code
/// (so a seed gives the same starting tensors on both backends), from an engine adapter folder, and back to an adapter.</summary>
/// <remarks>Phase 2 (the engine's method table, issue 11) replaces the switch in <see cref="Build"/> by one registration per
/// method; everything here reads the engine through its public API only.</remarks>
public static class TorchTuning
{
    /// <summary>The method's model on <paramref name="device"/> with the starting tensors the engine would draw for
    /// <paramref name="seed"/> (<see cref="TuningOptions.CreateModel"/>, copied over).</summary>
    public static TorchTunedModel Create(Backbone backbone, TuningOptions tuning, int classes, int seed, Device device, ComputePrecision precision = ComputePrecision.Float32)
    {
        tuning.Validate();
        if (tuning.KeepFeatureFraction < 1 || tuning.GroupLasso > 0)
            throw new NotSupportedException("VQT compression (KeepFeatureFraction < 1, GroupLasso > 0) runs on the managed backend only for now.");
        var engine = tuning.CreateModel(backbone.Model, classes, seed);
        var initial = engine.Parameters.ToDictionary(p => p.Name, p => p.Value);
        return Build(backbone, tuning.Method, tuning.MemoryTokens, tuning.Masked, tuning.TrainClassToken, tuning.QueryTokens, tuning.QueryDropout,
            tuning.Extends, classes, initial, Seeds.Mix(seed, 0xd209, 0), device, precision, keptFeatures: null);
    }

    /// <summary>An adapter folder's model on <paramref name="device"/> (the engine's checks: the backbone's fingerprint and input
    /// size; an extension's earlier adapters given or loaded from where they were saved).</summary>
    public static TorchTunedModel Load(Adapter adapter, Backbone backbone, Device device, ComputePrecision precision = ComputePrecision.Float32,
        IReadOnlyList<Adapter>? extends = null, string? where = null)
    {
        where ??= adapter.Folder ?? "<adapter>";
        adapter.EnsureMatches(backbone, where);
        var earlier = adapter.ResolveExtends(extends, where);
        foreach (var (a, i) in earlier.Select((a, i) => (a, i))) a.EnsureMatches(backbone, a.Folder ?? $"{where} (extended adapter {i + 1})");
        var cfg = adapter.Config;
        int[]? kept = adapter.Tensors.TryGetValue("kept_features", out var k) ? k.Data.Select(v => (int)v).ToArray() : null;
        var model = Build(backbone, cfg.Method, cfg.MemoryTokens, cfg.Masked, cfg.TrainClassToken, Math.Max(1, cfg.QueryTokens), cfg.QueryDropout, earlier,
            cfg.ClassLabels.Length, adapter.Tensors, dropoutSeed: 0, device, precision, kept);
        model.LoadAdapterTensors(adapter.Tensors, where);
        return model;
    }

    static TorchTunedModel Build(Backbone backbone, TuningMethod method, int memoryTokens, bool masked, bool trainClassToken, int queryTokens, float queryDropout,
        IReadOnlyList<Adapter> extends, int classes, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> initial, int dropoutSeed, Device device,
        ComputePrecision precision, int[]? keptFeatures)
    {
        TorchVit Frozen() => new TorchVit(backbone.Model.Config, backbone.Model.Parameters, device) { Precision = precision };
        // full fine-tuning trains its own copy (the head is left out: the task's new head replaces it)
        TorchVit Trainable() => new TorchVit(backbone.Model.Config with { NumClasses = 0 },
            backbone.Model.Parameters.Where(p => !p.Key.StartsWith("head.", StringComparison.Ordinal)).ToDictionary(), device, trainable: true) { Precision = precision };
        IReadOnlyList<(torch.Tensor, torch.Tensor)> Earlier() =>
            extends.Select(a => (TorchTensors.ToTorch(a.Tensors["cls_token"], device).DetachFromDisposeScope(), TorchTensors.ToTorch(a.Tensors["memory"], device).DetachFromDisposeScope())).ToArray();
        return method switch
        {
            TuningMethod.Vqt => new TorchQueryTunedVit(Frozen(), classes, queryTokens, queryDropout, initial, dropoutSeed, keptFeatures),
            TuningMethod.HeadOnly => new TorchAdaptedVit(Frozen(), classes, 0, false, false, false, 0, [], initial),
            TuningMethod.HeadAndClassToken => new TorchAdaptedVit(Frozen(), classes, 0, false, true, false, 0, [], initial),
            TuningMethod.Memory => new TorchAdaptedVit(Frozen(), classes, memoryTokens, masked, trainClassToken, false, 0, Earlier(), initial),
            TuningMethod.Full => new TorchAdaptedVit(Trainable(), classes, 0, false, false, true, 0, [], initial),
            TuningMethod.VqtMemory => new TorchAdaptedVit(Frozen(), classes, memoryTokens, false, trainClassToken, false, queryTokens, [], initial),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown tuning method."),
        };
    }

    /// <summary>The trained model as an engine adapter (the same config and tensors <c>Adapter.From</c> writes), so
    /// <c>mmt evaluate</c>, <c>predict</c>, the ML.NET transformers and this backend all read the same folder.</summary>
    public static Adapter ToAdapter(TorchTunedModel model, Backbone backbone, TuningOptions tuning, IReadOnlyList<string> labels, PreprocessConfig preprocess,
        Dictionary<string, JsonElement>? training = null)
    {
        var memory = model as TorchAdaptedVit;
        var c = backbone.Model.Config;
        return new Adapter(new AdapterConfig
        {
            Method = tuning.Method, MemoryTokens = memory?.MemoryTokens ?? 0, Masked = memory?.Masked ?? false,
            TrainClassToken = memory?.ClassToken is not null,
            Extends = tuning.Extends.Select(a => new AdapterReference(a.Folder ?? "", a.Fingerprint)).ToArray(),
            QueryTokens = tuning.Method is TuningMethod.Vqt or TuningMethod.VqtMemory ? tuning.QueryTokens : 0,
            QueryDropout = tuning.Method == TuningMethod.Vqt ? tuning.QueryDropout : 0,
            ClassLabels = labels.ToArray(), ImageSize = c.ImageSize, Preprocess = preprocess,
            BackboneSource = backbone.Source, BackboneFingerprint = backbone.Fingerprint, BackboneDim = c.Dim, BackboneDepth = c.Depth,
            Training = training ?? new(),
        }, model.AdapterTensors());
    }
}
