using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Model;

/// <summary>The registry of pretrained ViTs by timm model id: configs as data (one default per family, overrides per checkpoint).</summary>
public static class PretrainedModels
{
    static readonly PreprocessConfig Inception = new() { CropFraction = 0.9, Interpolation = Interpolation.Bicubic, Mean = [0.5f, 0.5f, 0.5f], Std = [0.5f, 0.5f, 0.5f] };

    static PretrainedConfig Vit(string id, int dim, int depth, int heads, int patch, PreprocessConfig pre, string license = "apache-2.0") =>
        new(id, new VitConfig { Dim = dim, Depth = depth, Heads = heads, MlpDim = 4 * dim, PatchSize = patch, ImageSize = pre.InputSize }, pre,
            "timm/" + id, "model.safetensors", license);

    public static IReadOnlyList<PretrainedConfig> All { get; } =
    [
        Vit("vit_tiny_patch16_224.augreg_in21k_ft_in1k", 192, 12, 3, 16, Inception),
        Vit("vit_small_patch16_224.augreg_in21k_ft_in1k", 384, 12, 6, 16, Inception),
        Vit("vit_small_patch32_224.augreg_in21k_ft_in1k", 384, 12, 6, 32, Inception),
        Vit("vit_base_patch16_224.augreg_in21k_ft_in1k", 768, 12, 12, 16, Inception),
        Vit("vit_base_patch32_224.augreg_in21k_ft_in1k", 768, 12, 12, 32, Inception),
        Vit("vit_base_patch16_224.augreg2_in21k_ft_in1k", 768, 12, 12, 16, Inception),
        Vit("vit_large_patch16_224.augreg_in21k_ft_in1k", 1024, 24, 16, 16, Inception),
    ];

    /// <summary>Finds a config by timm id (with or without the ".tag" suffix; the first tagged match wins), or null.</summary>
    public static PretrainedConfig? Find(string id)
    {
        id = id.StartsWith("timm/", StringComparison.Ordinal) ? id[5..] : id;
        return All.FirstOrDefault(c => c.Id == id) ?? All.FirstOrDefault(c => c.Id.Split('.')[0] == id);
    }

    /// <summary>Preprocessing for a checkpoint file: by its file name when it names a known id, else the ViT family default (inception mean/std, crop 0.9).</summary>
    public static PretrainedConfig ForFile(string path, VitConfig architecture)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        var known = Find(name);
        if (known is not null && known.Architecture with { ImageSize = architecture.ImageSize, NumClasses = architecture.NumClasses, Heads = architecture.Heads } == architecture)
            return known with { Architecture = architecture };
        return new PretrainedConfig(name, architecture, Inception with { InputSize = architecture.ImageSize }, "", Path.GetFileName(path), "unknown");
    }
}
