using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Model;

/// <summary>The registry of pretrained ViTs by timm model id (and a few Hugging Face repositories): configs as data — one
/// architecture and preprocessing per family, sizes and overrides per checkpoint — as timm's <c>default_cfgs</c>.</summary>
/// <remarks>What the weights cannot tell (heads, LayerNorm epsilon, QuickGELU) comes from here when a checkpoint is loaded by
/// one of these ids, or from a file named after one.</remarks>
public static class PretrainedModels
{
    // timm's mean/std constants (timm/data/constants.py)
    static readonly float[] InceptionMean = [0.5f, 0.5f, 0.5f], InceptionStd = [0.5f, 0.5f, 0.5f];
    static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f], ImageNetStd = [0.229f, 0.224f, 0.225f];
    static readonly float[] ClipMean = [0.48145466f, 0.4578275f, 0.40821073f], ClipStd = [0.26862954f, 0.26130258f, 0.27577711f];

    static PreprocessConfig Pre(int size, double crop, float[] mean, float[] std) =>
        new() { InputSize = size, CropFraction = crop, Interpolation = Interpolation.Bicubic, Mean = mean, Std = std };

    static readonly PreprocessConfig Inception = Pre(224, 0.9, InceptionMean, InceptionStd);
    static readonly PreprocessConfig ImageNet = Pre(224, 0.9, ImageNetMean, ImageNetStd);
    static readonly PreprocessConfig Clip = Pre(224, 0.9, ClipMean, ClipStd);

    // ---------------------------------------------------------------- families (timm's model_args)

    /// <summary>ViT (AugReg, DeiT, DINO): class token, GELU, final norm on the class token.</summary>
    static VitConfig Plain(int dim, int depth, int heads, int patch) => new() { Dim = dim, Depth = depth, Heads = heads, MlpDim = 4 * dim, PatchSize = patch };
    /// <summary>DeiT distilled: a distillation token and its own head, averaged with the class token's.</summary>
    static VitConfig Distilled(int dim, int depth, int heads) => Plain(dim, depth, heads, 16) with { DistillationToken = true };
    /// <summary>DeiT-III: LayerScale, no position for the class token.</summary>
    static VitConfig Deit3(int dim, int depth, int heads) => Plain(dim, depth, heads, 16) with { LayerScale = true, NoEmbedClass = true };
    /// <summary>DINOv2: LayerScale, patch 14, 518 px; with registers, 4 register tokens and no position for the prefix.</summary>
    static VitConfig Dinov2(int dim, int depth, int heads, int registers = 0) =>
        Plain(dim, depth, heads, 14) with { LayerScale = true, RegisterTokens = registers, NoEmbedClass = registers > 0, NumClasses = 0 };
    /// <summary>CLIP image tower: norm_pre, no patch bias, LayerNorm eps 1e-5; QuickGELU as OpenAI trained it (timm's
    /// <c>_quickgelu_</c> names), or GELU (timm's plain names, and OpenCLIP's).</summary>
    static VitConfig ClipTower(int dim, int depth, int heads, int patch, int classes, bool quickGelu = false) =>
        Plain(dim, depth, heads, patch) with
        {
            PreNorm = true, PatchBias = false, LayerNormEps = 1e-5f, NumClasses = classes,
            Activation = quickGelu ? VitActivation.QuickGelu : VitActivation.Gelu,
        };
    /// <summary>timm's "SBB" GAP ViTs: no class token, registers without position, LayerScale, average pooling with fc_norm.</summary>
    static VitConfig RegGap(int dim, int depth, int heads, int registers, bool layerScale = true) =>
        Plain(dim, depth, heads, 16) with
        {
            ClassToken = false, RegisterTokens = registers, NoEmbedClass = true, LayerScale = layerScale,
            GlobalPool = VitPooling.Average, FcNorm = true,
        };
    /// <summary>timm's "SW" GAP ViTs: no class token, no qkv bias, LayerScale, final norm on every token then the average.</summary>
    static VitConfig Gap(int dim, int depth, int heads) =>
        Plain(dim, depth, heads, 16) with { ClassToken = false, QkvBias = false, LayerScale = true, GlobalPool = VitPooling.Average };

    /// <summary>A timm checkpoint on the hub (<c>timm/&lt;id&gt;</c>, or another repository holding the same weights).</summary>
    static PretrainedConfig Timm(string id, VitConfig arch, PreprocessConfig pre, string? hubRepo = null, string license = "apache-2.0") =>
        new(id, arch with { ImageSize = pre.InputSize }, pre, hubRepo ?? "timm/" + id, "model.safetensors", license);

    /// <summary>A Hugging Face transformers repository (ViTModel / Dinov2Model / CLIPModel layouts), by its repository id.</summary>
    static PretrainedConfig Hf(string repo, VitConfig arch, PreprocessConfig pre, string license) =>
        new(repo, arch with { ImageSize = pre.InputSize }, pre, repo, "model.safetensors", license);

    public static IReadOnlyList<PretrainedConfig> All { get; } =
    [
        // AugReg ViT-Ti to ViT-L (How to train your ViT), patch 8/16/32
        Timm("vit_tiny_patch16_224.augreg_in21k_ft_in1k", Plain(192, 12, 3, 16), Inception),
        Timm("vit_small_patch16_224.augreg_in21k_ft_in1k", Plain(384, 12, 6, 16), Inception),
        Timm("vit_small_patch32_224.augreg_in21k_ft_in1k", Plain(384, 12, 6, 32), Inception),
        Timm("vit_base_patch16_224.augreg_in21k_ft_in1k", Plain(768, 12, 12, 16), Inception),
        Timm("vit_base_patch32_224.augreg_in21k_ft_in1k", Plain(768, 12, 12, 32), Inception),
        Timm("vit_base_patch16_224.augreg2_in21k_ft_in1k", Plain(768, 12, 12, 16), Inception),
        Timm("vit_base_patch8_224.augreg2_in21k_ft_in1k", Plain(768, 12, 12, 8), Inception),
        Timm("vit_large_patch16_224.augreg_in21k_ft_in1k", Plain(1024, 24, 16, 16), Inception),
        // DINO (v1): self-supervised, no head
        Timm("vit_small_patch8_224.dino", Plain(384, 12, 6, 8) with { NumClasses = 0 }, ImageNet),
        Timm("vit_small_patch16_224.dino", Plain(384, 12, 6, 16) with { NumClasses = 0 }, ImageNet),
        // DeiT, DeiT distilled, DeiT-III
        Timm("deit_tiny_patch16_224.fb_in1k", Plain(192, 12, 3, 16), ImageNet),
        Timm("deit_small_patch16_224.fb_in1k", Plain(384, 12, 6, 16), ImageNet),
        Timm("deit_base_patch16_224.fb_in1k", Plain(768, 12, 12, 16), ImageNet),
        Timm("deit_tiny_distilled_patch16_224.fb_in1k", Distilled(192, 12, 3), ImageNet),
        Timm("deit_small_distilled_patch16_224.fb_in1k", Distilled(384, 12, 6), ImageNet),
        Timm("deit_base_distilled_patch16_224.fb_in1k", Distilled(768, 12, 12), ImageNet),
        Timm("deit3_small_patch16_224.fb_in1k", Deit3(384, 12, 6), ImageNet),
        Timm("deit3_medium_patch16_224.fb_in1k", Deit3(512, 12, 8), ImageNet),
        Timm("deit3_base_patch16_224.fb_in1k", Deit3(768, 12, 12), ImageNet),
        Timm("deit3_large_patch16_224.fb_in1k", Deit3(1024, 24, 16), ImageNet),
        Timm("deit3_small_patch16_224.fb_in22k_ft_in1k", Deit3(384, 12, 6), ImageNet with { CropFraction = 1.0 }),
        Timm("deit3_base_patch16_224.fb_in22k_ft_in1k", Deit3(768, 12, 12), ImageNet with { CropFraction = 1.0 }),
        // DINOv2 (+ registers): features only, 518 px
        Timm("vit_small_patch14_dinov2.lvd142m", Dinov2(384, 12, 6), Pre(518, 1.0, ImageNetMean, ImageNetStd)),
        Timm("vit_base_patch14_dinov2.lvd142m", Dinov2(768, 12, 12), Pre(518, 1.0, ImageNetMean, ImageNetStd)),
        Timm("vit_large_patch14_dinov2.lvd142m", Dinov2(1024, 24, 16), Pre(518, 1.0, ImageNetMean, ImageNetStd)),
        Timm("vit_small_patch14_reg4_dinov2.lvd142m", Dinov2(384, 12, 6, registers: 4), Pre(518, 1.0, ImageNetMean, ImageNetStd)),
        Timm("vit_base_patch14_reg4_dinov2.lvd142m", Dinov2(768, 12, 12, registers: 4), Pre(518, 1.0, ImageNetMean, ImageNetStd)),
        Timm("vit_large_patch14_reg4_dinov2.lvd142m", Dinov2(1024, 24, 16, registers: 4), Pre(518, 1.0, ImageNetMean, ImageNetStd)),
        // OpenAI CLIP image towers: the projection as the head (512/768 wide, zero bias); QuickGELU under timm's _quickgelu_
        // names (the same weights), GELU under the plain names, as timm defines them; fine-tuned on ImageNet-1k
        Timm("vit_base_patch32_clip_quickgelu_224.openai", ClipTower(768, 12, 12, 32, 512, quickGelu: true), Clip, "timm/vit_base_patch32_clip_224.openai", "mit"),
        Timm("vit_base_patch16_clip_quickgelu_224.openai", ClipTower(768, 12, 12, 16, 512, quickGelu: true), Clip, "timm/vit_base_patch16_clip_224.openai", "mit"),
        Timm("vit_large_patch14_clip_quickgelu_224.openai", ClipTower(1024, 24, 16, 14, 768, quickGelu: true), Clip with { CropFraction = 1.0 }, "timm/vit_large_patch14_clip_224.openai", "mit"),
        Timm("vit_base_patch32_clip_224.openai", ClipTower(768, 12, 12, 32, 512), Clip, license: "mit"),
        Timm("vit_base_patch16_clip_224.openai", ClipTower(768, 12, 12, 16, 512), Clip, license: "mit"),
        Timm("vit_large_patch14_clip_224.openai", ClipTower(1024, 24, 16, 14, 768), Clip with { CropFraction = 1.0 }, license: "mit"),
        Timm("vit_base_patch32_clip_224.openai_ft_in1k", ClipTower(768, 12, 12, 32, 1000), Clip),
        Timm("vit_base_patch16_clip_224.openai_ft_in1k", ClipTower(768, 12, 12, 16, 1000), Clip),
        Timm("vit_large_patch14_clip_224.openai_ft_in1k", ClipTower(1024, 24, 16, 14, 1000), Clip with { CropFraction = 1.0 }),
        // OpenCLIP (LAION-2B) image towers, GELU
        Timm("vit_base_patch32_clip_224.laion2b", ClipTower(768, 12, 12, 32, 512), Clip, license: "mit"),
        Timm("vit_base_patch16_clip_224.laion2b", ClipTower(768, 12, 12, 16, 512), Clip with { CropFraction = 1.0 }, license: "mit"),
        Timm("vit_large_patch14_clip_224.laion2b", ClipTower(1024, 24, 16, 14, 768), Inception with { CropFraction = 1.0 }, license: "mit"),
        Timm("vit_base_patch32_clip_224.laion2b_ft_in1k", ClipTower(768, 12, 12, 32, 1000), Clip),
        Timm("vit_base_patch16_clip_224.laion2b_ft_in1k", ClipTower(768, 12, 12, 16, 1000), Clip with { CropFraction = 1.0 }),
        Timm("vit_large_patch14_clip_224.laion2b_ft_in1k", ClipTower(1024, 24, 16, 14, 1000), Inception with { CropFraction = 1.0 }),
        // global-average-pooled ViTs (no class token)
        Timm("vit_medium_patch16_reg4_gap_256.sbb_in12k_ft_in1k", RegGap(512, 12, 8, 4), Inception with { InputSize = 256, CropFraction = 0.95 }),
        Timm("vit_medium_patch16_reg4_gap_256.sbb_in1k", RegGap(512, 12, 8, 4), Inception with { InputSize = 256, CropFraction = 0.95 }),
        Timm("vit_betwixt_patch16_reg4_gap_256.sbb_in12k_ft_in1k", RegGap(640, 12, 10, 4), Inception with { InputSize = 256, CropFraction = 0.95 }),
        Timm("vit_medium_patch16_gap_256.sw_in12k_ft_in1k", Gap(512, 12, 8), Inception with { InputSize = 256, CropFraction = 0.95 }),
        // Hugging Face transformers layouts (ViTModel/DeiT, Dinov2Model, Dinov2WithRegistersModel, CLIPModel)
        Hf("facebook/dinov2-small", Dinov2(384, 12, 6), Pre(518, 1.0, ImageNetMean, ImageNetStd), "apache-2.0"),
        Hf("facebook/dinov2-base", Dinov2(768, 12, 12), Pre(518, 1.0, ImageNetMean, ImageNetStd), "apache-2.0"),
        Hf("facebook/dinov2-large", Dinov2(1024, 24, 16), Pre(518, 1.0, ImageNetMean, ImageNetStd), "apache-2.0"),
        Hf("facebook/dinov2-with-registers-small", Dinov2(384, 12, 6, registers: 4), Pre(518, 1.0, ImageNetMean, ImageNetStd), "apache-2.0"),
        Hf("facebook/dinov2-with-registers-base", Dinov2(768, 12, 12, registers: 4), Pre(518, 1.0, ImageNetMean, ImageNetStd), "apache-2.0"),
        Hf("openai/clip-vit-base-patch32", ClipTower(768, 12, 12, 32, 512, quickGelu: true), Clip with { CropFraction = 1.0 }, "mit"),
        Hf("openai/clip-vit-base-patch16", ClipTower(768, 12, 12, 16, 512, quickGelu: true), Clip with { CropFraction = 1.0 }, "mit"),
        Hf("openai/clip-vit-large-patch14", ClipTower(1024, 24, 16, 14, 768, quickGelu: true), Clip with { CropFraction = 1.0 }, "mit"),
        Hf("facebook/deit-tiny-distilled-patch16-224", Distilled(192, 12, 3) with { LayerNormEps = 1e-12f }, ImageNet with { CropFraction = 0.875 }, "apache-2.0"),
        Hf("google/vit-base-patch16-224", Plain(768, 12, 12, 16) with { LayerNormEps = 1e-12f }, Inception with { CropFraction = 1.0 }, "apache-2.0"),
    ];

    /// <summary>Finds a config by timm id (with or without "timm/" and the ".tag" suffix; the first tagged match wins) or Hugging
    /// Face repository id, or null.</summary>
    public static PretrainedConfig? Find(string id)
    {
        if (All.FirstOrDefault(c => c.Id == id) is { } exact) return exact;
        id = id.StartsWith("timm/", StringComparison.Ordinal) ? id[5..] : id;
        return All.FirstOrDefault(c => c.Id == id) ?? All.FirstOrDefault(c => c.Id.Split('.')[0] == id);
    }

    /// <summary>Preprocessing for a checkpoint file: by its file name when it names a known id of the same architecture, else
    /// the family's default (<see cref="DefaultPreprocess"/>).</summary>
    public static PretrainedConfig ForFile(string path, VitConfig architecture)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        var known = Find(name);
        if (known is not null && known.Architecture with { ImageSize = architecture.ImageSize, NumClasses = architecture.NumClasses, Heads = architecture.Heads } == architecture)
            return known with { Architecture = architecture };
        return new PretrainedConfig(name, architecture, DefaultPreprocess(architecture) with { InputSize = architecture.ImageSize }, "", Path.GetFileName(path), "unknown");
    }

    /// <summary>What a checkpoint of an unknown id most likely expects, by family: CLIP's mean/std for a pre-norm (CLIP) tower;
    /// ImageNet's for DeiT, DeiT-III and DINOv2 (a distillation token, LayerScale with a class token, or prefix tokens without
    /// position); inception's (0.5) for the AugReg and timm GAP ViTs. Always crop 0.9, bicubic. A guess: load by id when you can.</summary>
    public static PreprocessConfig DefaultPreprocess(VitConfig c) =>
        c.PreNorm ? Clip
        : c.ClassToken && (c.DistillationToken || c.LayerScale || c.NoEmbedClass) ? ImageNet
        : Inception;
}
