using System.Security.Cryptography;
using System.Runtime.InteropServices;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;

namespace MLNet.MemoryTokens.Model;

/// <summary>Options for loading a pretrained backbone.</summary>
public sealed record BackboneOptions
{
    /// <summary>Input size to run at; the position embedding is resampled when it differs from the checkpoint's (null: the checkpoint's).</summary>
    public int? ImageSize { get; init; }
    /// <summary>Attention heads (null: the known model's, a Hugging Face config.json's, else width / 64, the rule every timm ViT follows).</summary>
    public int? Heads { get; init; }
    /// <summary>The MLP activation (null: the known model's or config.json's; else QuickGELU for a Hugging Face CLIP checkpoint,
    /// whose default config has it, and GELU otherwise). The weights cannot tell: OpenAI CLIP was trained with QuickGELU.</summary>
    public VitActivation? Activation { get; init; }
    /// <summary>The LayerNorm epsilon (null: the known model's or config.json's; else 1e-5 for CLIP towers, 1e-6 otherwise).</summary>
    public float? LayerNormEps { get; init; }
    /// <summary>Drop the checkpoint's classification head(s) (features only).</summary>
    public bool DropHead { get; init; }
    /// <summary>Load weights holding NaN or ±∞ instead of refusing them (they turn every output into NaN).</summary>
    public bool AllowNonFiniteWeights { get; init; }
}

/// <summary>A pretrained ViT ready to use: the model at the requested input size, its preprocessing, and a fingerprint of
/// the checkpoint weights so adapters can refuse a different backbone.</summary>
public sealed class Backbone
{
    public VisionTransformer Model { get; }
    public PreprocessConfig Preprocess { get; }
    /// <summary>The path or model id it was loaded from.</summary>
    public string Source { get; }
    /// <summary>SHA-256 over the checkpoint's trunk tensors (names, shapes, values as loaded, before resampling; the classification
    /// heads excluded, so a head-dropped load and a full load of the same checkpoint match), hex.</summary>
    public string Fingerprint { get; }

    public Backbone(VisionTransformer model, PreprocessConfig preprocess, string source, string fingerprint)
    {
        Model = model; Preprocess = preprocess; Source = source; Fingerprint = fingerprint;
    }

    /// <summary>Loads a checkpoint (safetensors with timm, Hugging Face or CLIP/OpenCLIP names, or big_vision .npz) by path,
    /// timm model id or a known Hugging Face repository id (<see cref="PretrainedModels"/>).</summary>
    public static Backbone Load(string pathOrId, BackboneOptions? options = null)
    {
        options ??= new BackboneOptions();
        bool isPath = ModelHub.IsPath(pathOrId);
        var known = isPath ? null : PretrainedModels.Find(pathOrId);
        // a known id whose weights live in another hub repository (timm's _quickgelu_ names share OpenAI's) downloads from there
        string path = ModelHub.Resolve(known is not null && known.HubRepo != "timm/" + known.Id && known.HubRepo != known.Id ? known.HubRepo : pathOrId);
        var sd = CheckpointReader.ReadTimmStateDict(path, out _, out var layout);
        FiniteCheck.Ensure(sd, path, options.AllowNonFiniteWeights, "Use an intact copy of the checkpoint, or pass --allow-non-finite-weights (BackboneOptions.AllowNonFiniteWeights) to load it anyway.");
        if (options.DropHead) foreach (var key in sd.Keys.Where(VitConfig.IsHeadWeight).ToArray()) sd.Remove(key);
        // what the weights cannot tell: the options, else the known model (by id, or a file named after one), else the
        // Hugging Face config.json beside the file, else the layout's convention
        var hints = known?.Architecture ?? (isPath ? PretrainedModels.Find(Path.GetFileNameWithoutExtension(path))?.Architecture : null);
        var hf = layout is CheckpointLayout.HuggingFace or CheckpointLayout.HuggingFaceClip ? HuggingFaceConfig.ReadBeside(path) : null;
        VitConfig config;
        try
        {
            var activation = options.Activation ?? hints?.Activation ?? ParseActivation(hf?.Activation, path)
                ?? (layout == CheckpointLayout.HuggingFaceClip ? VitActivation.QuickGelu : VitActivation.Gelu);
            config = VitConfig.FromStateDict(sd, options.Heads ?? hints?.Heads ?? hf?.Heads, options.LayerNormEps ?? hints?.LayerNormEps ?? hf?.LayerNormEps, activation);
        }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}", e); }
        string fingerprint = ComputeFingerprint(sd);
        var pretrained = isPath ? PretrainedModels.ForFile(path, config) : known ?? PretrainedModels.ForFile(path, config);
        int size = options.ImageSize ?? config.ImageSize;
        if (size % config.PatchSize != 0) throw new ArgumentException($"Image size {size} is not a multiple of the patch size {config.PatchSize}.");
        try { (config with { ImageSize = size }).Validate(); }   // the limits, before any resampling is paid for
        catch (LimitExceededException) when (size != config.ImageSize) { throw; }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}", e); }
        if (size != config.ImageSize)
        {
            int g = size / config.PatchSize;
            // prefix rows split off (none with no_embed_class), the patch grid resized: timm's resample_abs_pos_embed
            sd["pos_embed"] = PosEmbedResampler.Resample(sd["pos_embed"], config.PosEmbedPrefix, (config.GridSize, config.GridSize), (g, g));
            config = config with { ImageSize = size };
        }
        VisionTransformer model;
        try { model = new VisionTransformer(config, sd); }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}", e); }
        return new Backbone(model, pretrained.Preprocess with { InputSize = size }, pathOrId, fingerprint);
    }

    static VitActivation? ParseActivation(string? hiddenAct, string path) => hiddenAct switch
    {
        null => null,
        "gelu" => VitActivation.Gelu,
        "quick_gelu" => VitActivation.QuickGelu,
        _ => throw new CheckpointException(path, $"config.json asks for the activation '{hiddenAct}'; only 'gelu' and 'quick_gelu' are supported"),
    };

    /// <summary>Hash of a state dict's trunk (every tensor but the heads, head.* and head_dist.*), independent of key order.</summary>
    public static string ComputeFingerprint(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var key in stateDict.Keys.Where(k => !VitConfig.IsHeadWeight(k)).Order(StringComparer.Ordinal))
        {
            var t = stateDict[key];
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(key + Tensor.FormatShape(t.Shape)));
            sha.AppendData(MemoryMarshal.AsBytes(t.Data.AsSpan()));
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Decoded images → the model's normalised input [B, 3, S, S] (timm eval transform: resize, center crop, mean/std).</summary>
    public Tensor PreprocessImages(IReadOnlyList<RgbImage> images)
    {
        int s = Preprocess.InputSize, plane = 3 * s * s;
        var x = new Tensor([images.Count, 3, s, s]);
        Kernels.Parallelism.For(0, images.Count, i =>
            ImageTransforms.Preprocess(images[i], s, Preprocess.CropFraction, Preprocess.Interpolation, Preprocess.Mean, Preprocess.Std, x.Data.AsSpan(i * plane, plane)));
        return x;
    }
}
