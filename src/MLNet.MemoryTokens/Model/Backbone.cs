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
    /// <summary>Attention heads (null: width / 64, the rule every timm ViT follows).</summary>
    public int? Heads { get; init; }
    /// <summary>Drop the checkpoint's classification head (features only).</summary>
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
    /// head excluded, so a head-dropped load and a full load of the same checkpoint match), hex.</summary>
    public string Fingerprint { get; }

    public Backbone(VisionTransformer model, PreprocessConfig preprocess, string source, string fingerprint)
    {
        Model = model; Preprocess = preprocess; Source = source; Fingerprint = fingerprint;
    }

    /// <summary>Loads a checkpoint (safetensors with timm or Hugging Face names, or big_vision .npz) by path or timm model id.</summary>
    public static Backbone Load(string pathOrId, BackboneOptions? options = null)
    {
        options ??= new BackboneOptions();
        string path = ModelHub.Resolve(pathOrId);
        var sd = CheckpointReader.ReadTimmStateDict(path);
        FiniteCheck.Ensure(sd, path, options.AllowNonFiniteWeights, "Use an intact copy of the checkpoint, or pass --allow-non-finite-weights (BackboneOptions.AllowNonFiniteWeights) to load it anyway.");
        if (options.DropHead) { sd.Remove("head.weight"); sd.Remove("head.bias"); }
        VitConfig config;
        try { config = VitConfig.FromStateDict(sd, options.Heads); }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}", e); }
        string fingerprint = ComputeFingerprint(sd);
        var pretrained = ModelHub.IsPath(pathOrId) ? PretrainedModels.ForFile(path, config) : PretrainedModels.Find(pathOrId) ?? PretrainedModels.ForFile(path, config);
        int size = options.ImageSize ?? config.ImageSize;
        if (size % config.PatchSize != 0) throw new ArgumentException($"Image size {size} is not a multiple of the patch size {config.PatchSize}.");
        try { (config with { ImageSize = size }).Validate(); }   // the limits, before any resampling is paid for
        catch (LimitExceededException) when (size != config.ImageSize) { throw; }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}", e); }
        if (size != config.ImageSize)
        {
            int g = size / config.PatchSize;
            sd["pos_embed"] = PosEmbedResampler.Resample(sd["pos_embed"], config.PrefixTokens, (config.GridSize, config.GridSize), (g, g));
            config = config with { ImageSize = size };
        }
        VisionTransformer model;
        try { model = new VisionTransformer(config, sd); }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {e.Message}", e); }
        return new Backbone(model, pretrained.Preprocess with { InputSize = size }, pathOrId, fingerprint);
    }

    /// <summary>Hash of a state dict's trunk (every tensor but head.*), independent of key order.</summary>
    public static string ComputeFingerprint(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var key in stateDict.Keys.Where(k => !k.StartsWith("head.", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
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
