using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.ML;

/// <summary>Backbones loaded by path or model id, shared between components: a pipeline with a trainer, a featurizer and a
/// loaded adapter on the same checkpoint holds one copy of the weights.</summary>
/// <remarks>Keyed by (full path or model id, image size, head kept). Entries are weak: a backbone stays cached while some
/// component (or the caller) holds it. Backbones are loaded with their classification head kept, so the multi-task
/// transform can also output the original head's scores; the head does not change training.</remarks>
public static class BackboneCache
{
    /// <summary>The timm model id components use when none is given (downloaded once into <c>~/.cache/mlnet-memorytokens</c>).</summary>
    public const string DefaultModel = "vit_tiny_patch16_224.augreg_in21k_ft_in1k";

    static readonly Dictionary<(string Source, int ImageSize, bool KeepHead), WeakReference<Backbone>> Entries = new();
    static readonly object Gate = new();

    /// <summary>The backbone at <paramref name="pathOrId"/> (a .safetensors/.npz path or a timm model id) running at
    /// <paramref name="imageSize"/> (null: the checkpoint's own size), loaded on first use.</summary>
    public static Backbone Get(string pathOrId, int? imageSize = null, bool keepHead = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pathOrId);
        string source = File.Exists(pathOrId) ? Path.GetFullPath(pathOrId) : pathOrId;
        lock (Gate)
        {
            if (Entries.TryGetValue((source, imageSize ?? 0, keepHead), out var weak) && weak.TryGetTarget(out var cached)) return cached;
            var backbone = Backbone.Load(pathOrId, new BackboneOptions { ImageSize = imageSize, DropHead = !keepHead });
            Entries[(source, imageSize ?? 0, keepHead)] = new WeakReference<Backbone>(backbone);
            Entries[(source, backbone.Model.Config.ImageSize, keepHead)] = new WeakReference<Backbone>(backbone);
            return backbone;
        }
    }

    /// <summary>Forgets every cached backbone (components keep the ones they hold).</summary>
    public static void Clear()
    {
        lock (Gate) Entries.Clear();
    }

    /// <summary>The backbone a component uses: the loaded one when given (its size must match <paramref name="imageSize"/>
    /// if that is set), else the cached checkpoint.</summary>
    internal static Backbone Resolve(Backbone? backbone, string? pathOrId, int? imageSize)
    {
        if (backbone is not null)
        {
            if (imageSize is int s && s != backbone.Model.Config.ImageSize)
                throw new ArgumentException($"ImageSize is {s} but the given backbone runs at {backbone.Model.Config.ImageSize}; leave ImageSize unset or load the backbone at {s}.");
            return backbone;
        }
        if (string.IsNullOrWhiteSpace(pathOrId))
            throw new ArgumentException("No backbone: set Backbone (a loaded MLNet.MemoryTokens.Model.Backbone) or BackbonePath (a checkpoint path or a timm model id such as " + DefaultModel + ").");
        return Get(pathOrId, imageSize);
    }

    /// <summary>A backbone an adapter file fits: the given one, else its recorded checkpoint at its size, with or without the
    /// head — the engine's fingerprint covers the head, so adapters trained on a head-less load (the CLI's) need that load.</summary>
    internal static Backbone ForAdapter(Tuning.Adapter adapter, Backbone? backbone, string? pathOrId)
    {
        if (backbone is not null) return backbone;
        string source = string.IsNullOrWhiteSpace(pathOrId) ? adapter.Config.BackboneSource : pathOrId;
        if (string.IsNullOrWhiteSpace(source))
            throw new ArgumentException("The adapter does not record its backbone; pass the backbone (or its path).");
        Backbone withHead;
        try { withHead = Get(source, adapter.Config.ImageSize, keepHead: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The adapter was trained on backbone '{source}', which cannot be loaded here ({e.Message}). Pass the backbone (a loaded Backbone or its checkpoint path) when loading.", e);
        }
        if (withHead.Fingerprint == adapter.Config.BackboneFingerprint) return withHead;
        var headless = Get(source, adapter.Config.ImageSize, keepHead: false);
        return headless.Fingerprint == adapter.Config.BackboneFingerprint ? headless : withHead;   // the adapter then explains the mismatch
    }

    /// <summary>A private deep copy: full fine-tuning writes into the backbone's weights, which must not leak into other components.</summary>
    internal static Backbone PrivateCopy(Backbone backbone)
    {
        var weights = backbone.Model.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value.Clone());
        return new Backbone(new VisionTransformer(backbone.Model.Config, weights), backbone.Preprocess, backbone.Source, backbone.Fingerprint);
    }
}
