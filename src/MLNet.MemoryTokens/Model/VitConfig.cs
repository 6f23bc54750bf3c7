using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Model;

/// <summary>The MLP's activation: exact GELU (timm's default), or CLIP's QuickGELU x·σ(1.702·x) (OpenAI CLIP weights).</summary>
public enum VitActivation { Gelu, QuickGelu }

/// <summary>What the head reads (timm's <c>global_pool</c>): the class token (<c>'token'</c>; a distilled model averages its
/// class and distillation tokens), or the average of the patch tokens, prefix tokens excluded (<c>'avg'</c>).</summary>
public enum VitPooling { Token, Average }

/// <summary>Architecture of a timm <c>VisionTransformer</c>: pre-norm blocks, prefix tokens (class, distillation, registers),
/// learned absolute position embedding — and the options the families we load differ in (LayerScale, <c>norm_pre</c>,
/// QuickGELU, global-average pooling with <c>fc_norm</c>, biases that some omit).</summary>
/// <remarks>The defaults are the AugReg ViT's (class token, GELU, final norm on the class token).</remarks>
public sealed record VitConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int InChannels { get; init; } = 3;
    public int Dim { get; init; } = 192;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 3;
    public int MlpDim { get; init; } = 768;
    /// <summary>Head classes; 0 means no head (features only).</summary>
    public int NumClasses { get; init; } = 1000;
    public float LayerNormEps { get; init; } = 1e-6f;
    /// <summary>A class token (<c>cls_token</c>) leads the stream (timm's <c>class_token</c>; false in the GAP models).</summary>
    public bool ClassToken { get; init; } = true;
    /// <summary>A distillation token (<c>dist_token</c>) follows the class token, read by its own head <c>head_dist</c>; the two
    /// heads are averaged at inference (DeiT distilled, timm's <c>VisionTransformerDistilled</c>).</summary>
    public bool DistillationToken { get; init; }
    /// <summary>Register tokens (<c>reg_token</c> [1, R, D]) after the class token: prefix tokens nothing reads out
    /// (DINOv2 with registers, timm's <c>reg_tokens</c>).</summary>
    public int RegisterTokens { get; init; }
    /// <summary>The position embedding covers the patches only; prefix tokens get none (timm's <c>no_embed_class</c>: DeiT-III,
    /// DINOv2 with registers).</summary>
    public bool NoEmbedClass { get; init; }
    /// <summary>A LayerNorm on the embedded tokens before the first block (<c>norm_pre</c>: CLIP's <c>ln_pre</c>).</summary>
    public bool PreNorm { get; init; }
    /// <summary>The patch embedding has a bias (timm drops it when <c>pre_norm</c>: CLIP).</summary>
    public bool PatchBias { get; init; } = true;
    /// <summary>The qkv projection has a bias (timm's <c>qkv_bias</c>).</summary>
    public bool QkvBias { get; init; } = true;
    /// <summary>Each residual branch is scaled per channel by a learned γ (<c>ls1.gamma</c>, <c>ls2.gamma</c>: DINOv2, DeiT-III).</summary>
    public bool LayerScale { get; init; }
    public VitActivation Activation { get; init; } = VitActivation.Gelu;
    public VitPooling GlobalPool { get; init; } = VitPooling.Token;
    /// <summary>With average pooling: the final norm is applied to the pooled vector (<c>fc_norm</c>, timm's default for 'avg'),
    /// not to every token before pooling (<c>norm</c>, timm's <c>fc_norm=False</c>).</summary>
    public bool FcNorm { get; init; }

    public int GridSize => ImageSize / PatchSize;
    public int NumPatches => GridSize * GridSize;
    /// <summary>Prefix tokens before the patches: the class token, the distillation token, the registers (in that order).</summary>
    public int PrefixTokens => (ClassToken ? 1 : 0) + (DistillationToken ? 1 : 0) + RegisterTokens;
    /// <summary>Row of the first register token.</summary>
    public int RegisterRow => (ClassToken ? 1 : 0) + (DistillationToken ? 1 : 0);
    public int NumTokens => PrefixTokens + NumPatches;
    public int HeadDim => Dim / Heads;
    /// <summary>Rows of the position embedding that belong to prefix tokens (0 with <see cref="NoEmbedClass"/>).</summary>
    public int PosEmbedPrefix => NoEmbedClass ? 0 : PrefixTokens;
    /// <summary>Whether the class token gets a position (pos[0]): what a masked task's class-token row adds too.</summary>
    public bool ClassTokenHasPosition => ClassToken && !NoEmbedClass;
    /// <summary>The name of the final norm's weights: <c>fc_norm</c> after average pooling, <c>norm</c> otherwise.</summary>
    public string FinalNormName => FcNorm ? "fc_norm" : "norm";

    /// <summary>True for the classification heads' weights (<c>head.*</c>, <c>head_dist.*</c>): what a new task replaces, what
    /// the backbone fingerprint leaves out, what loading without the head drops.</summary>
    public static bool IsHeadWeight(string name) => name.StartsWith("head.", StringComparison.Ordinal) || name.StartsWith("head_dist.", StringComparison.Ordinal);

    /// <summary>Throws when the numbers cannot describe a ViT.</summary>
    public void Validate()
    {
        if (PatchSize <= 0 || ImageSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"Image size {ImageSize} must be a positive multiple of patch size {PatchSize}.");
        if (Dim <= 0 || Heads <= 0 || Dim % Heads != 0) throw new ArgumentException($"Width {Dim} must be a positive multiple of heads {Heads}.");
        if (Depth <= 0 || MlpDim <= 0 || InChannels <= 0 || NumClasses < 0 || RegisterTokens < 0) throw new ArgumentException($"Invalid ViT config {this}.");
        if (GlobalPool == VitPooling.Token && !ClassToken) throw new ArgumentException("Token pooling reads the class token: a model without one pools by average.");
        if (DistillationToken && (!ClassToken || RegisterTokens > 0 || GlobalPool != VitPooling.Token))
            throw new ArgumentException("A distilled ViT has a class token, no registers and token pooling (timm's VisionTransformerDistilled).");
        if (FcNorm && GlobalPool != VitPooling.Average) throw new ArgumentException("fc_norm normalises the average-pooled vector: it needs average pooling.");
        Limits.Check("The image size", ImageSize, PatchSize, Limits.MaxImageSize);
        Limits.Check($"The number of patch tokens ({ImageSize}/{PatchSize})²", (int)Math.Min(int.MaxValue, (long)GridSize * GridSize), 1, Limits.MaxPatchTokens,
            "Use a smaller image size.");
        Limits.Check("The number of classes", NumClasses, 0, Limits.MaxClasses);
        Limits.Check("The number of register tokens", RegisterTokens, 0, Limits.MaxPatchTokens);
        const string weights = "the largest weight of this ViT";
        Limits.CheckElements(weights, Limits.Product(Math.Max(3L * Dim, MlpDim), Dim));
        Limits.CheckElements(weights, Limits.Product(Dim, InChannels, PatchSize, PatchSize));
        Limits.CheckElements(weights, Limits.Product(NumClasses, Dim));
    }

    /// <summary>Throws a <see cref="LimitExceededException"/> unless a forward pass of <paramref name="batch"/> images with
    /// <paramref name="rows"/> stream rows each fits: the batch within <see cref="Limits.MaxBatch"/>, every per-layer buffer
    /// ([B·S, max(3D, F)]) and, when <paramref name="training"/>, the attention probabilities [B, H, S, S] within
    /// <see cref="Limits.MaxTensorElements"/>. Models call it before they allocate anything for a batch.</summary>
    public void CheckBatch(int batch, int rows, bool training)
    {
        Limits.Check("The batch size", batch, 0, Limits.MaxBatch, "Use smaller batches.");
        const string hint = "Lower the batch size or the image size.";
        Limits.CheckElements($"A batch of {batch} at {rows} tokens per image", Limits.Product(batch, rows, Math.Max(3L * Dim, MlpDim)), hint);
        if (training)
            Limits.CheckElements($"The attention probabilities of a batch of {batch} at {rows} tokens", Limits.Product(batch, Heads, rows, rows), hint);
    }

    /// <summary>The batch size of images [B, C_in, H, W] this model takes; anything else is refused with the expected shape.</summary>
    public int CheckImages(Tensor images)
    {
        if (images.Rank != 4 || images.Shape[1] != InChannels || images.Shape[2] != ImageSize || images.Shape[3] != ImageSize)
            throw new ArgumentException($"Images must be [B, {InChannels}, {ImageSize}, {ImageSize}] for this model, got {images.ShapeString}.");
        return images.Shape[0];
    }

    /// <summary>Tensor shapes of a timm state dict for this architecture (strict-load reference).</summary>
    public Dictionary<string, int[]> StateDictShapes()
    {
        int d = Dim, p = PatchSize;
        var s = new Dictionary<string, int[]>();
        if (ClassToken) s["cls_token"] = [1, 1, d];
        if (DistillationToken) s["dist_token"] = [1, 1, d];
        if (RegisterTokens > 0) s["reg_token"] = [1, RegisterTokens, d];
        s["pos_embed"] = [1, PosEmbedPrefix + NumPatches, d];
        s["patch_embed.proj.weight"] = [d, InChannels, p, p];
        if (PatchBias) s["patch_embed.proj.bias"] = [d];
        if (PreNorm) { s["norm_pre.weight"] = [d]; s["norm_pre.bias"] = [d]; }
        for (int i = 0; i < Depth; i++)
        {
            string b = $"blocks.{i}.";
            s[b + "norm1.weight"] = [d]; s[b + "norm1.bias"] = [d];
            s[b + "attn.qkv.weight"] = [3 * d, d];
            if (QkvBias) s[b + "attn.qkv.bias"] = [3 * d];
            s[b + "attn.proj.weight"] = [d, d]; s[b + "attn.proj.bias"] = [d];
            if (LayerScale) s[b + "ls1.gamma"] = [d];
            s[b + "norm2.weight"] = [d]; s[b + "norm2.bias"] = [d];
            s[b + "mlp.fc1.weight"] = [MlpDim, d]; s[b + "mlp.fc1.bias"] = [MlpDim];
            s[b + "mlp.fc2.weight"] = [d, MlpDim]; s[b + "mlp.fc2.bias"] = [d];
            if (LayerScale) s[b + "ls2.gamma"] = [d];
        }
        s[FinalNormName + ".weight"] = [d]; s[FinalNormName + ".bias"] = [d];
        if (NumClasses > 0)
        {
            s["head.weight"] = [NumClasses, d]; s["head.bias"] = [NumClasses];
            if (DistillationToken) { s["head_dist.weight"] = [NumClasses, d]; s["head_dist.bias"] = [NumClasses]; }
        }
        return s;
    }

    /// <summary>Infers the architecture from a timm-named state dict: width, patch, depth and MLP width from the shapes; the
    /// prefix tokens, LayerScale, <c>norm_pre</c>, biases and pooling from which tensors are there (no <c>cls_token</c> or an
    /// <c>fc_norm</c>: average pooling); the grid from the position embedding (with or without rows for the prefix tokens).
    /// What the tensors cannot tell — heads, the LayerNorm epsilon, the activation — comes from the arguments: heads by
    /// timm's d/64 rule, epsilon 1e-5 for pre-norm (CLIP) models and 1e-6 otherwise, GELU.</summary>
    public static VitConfig FromStateDict(IReadOnlyDictionary<string, Tensor> sd, int? heads = null, float? layerNormEps = null, VitActivation activation = VitActivation.Gelu)
    {
        Tensor Need(string key) => sd.TryGetValue(key, out var t) ? t : throw new ArgumentException($"Checkpoint has no '{key}': not a timm VisionTransformer state dict.");
        var pw = Need("patch_embed.proj.weight");
        if (pw.Rank != 4 || pw.Shape[2] != pw.Shape[3]) throw new ArgumentException($"patch_embed.proj.weight has shape {pw.ShapeString}, expected [D, C, p, p].");
        int d = pw.Shape[0], p = pw.Shape[2];
        bool cls = sd.ContainsKey("cls_token"), dist = sd.ContainsKey("dist_token");
        int regs = sd.TryGetValue("reg_token", out var reg) ? (reg.Rank == 3 ? reg.Shape[1] : throw new ArgumentException($"reg_token has shape {reg.ShapeString}, expected [1, R, {d}].")) : 0;
        int prefix = (cls ? 1 : 0) + (dist ? 1 : 0) + regs;
        var pos = Need("pos_embed");
        if (pos.Rank != 3 || pos.Shape[2] != d) throw new ArgumentException($"pos_embed has shape {pos.ShapeString}, expected [1, N, {d}].");
        // the position embedding has a row per prefix token (timm's default), or rows for the patches only (no_embed_class)
        int n = pos.Shape[1];
        bool noEmbedClass;
        int grid;
        if (IsSquare(n - prefix, out grid)) noEmbedClass = false;
        else if (prefix > 0 && IsSquare(n, out grid)) noEmbedClass = true;
        else throw new ArgumentException($"pos_embed has {n} rows: neither {prefix} prefix token(s) + a square grid nor a square grid alone.");
        // depth from the highest block index present, so that a missing tensor of a middle block is named by the strict
        // load rather than cutting the model short there (and calling the later blocks unexpected)
        int depth = 0;
        foreach (var key in sd.Keys)
            if (key.StartsWith("blocks.", StringComparison.Ordinal) && key.IndexOf('.', 7) is int dot and > 7
                && int.TryParse(key.AsSpan(7, dot - 7), System.Globalization.NumberStyles.None, null, out int index) && index < 4096)
                depth = Math.Max(depth, index + 1);
        if (depth == 0) throw new ArgumentException("Checkpoint has no blocks.0.attn.qkv.weight.");
        var fc1 = Need("blocks.0.mlp.fc1.weight");
        if (fc1.Rank != 2) throw new ArgumentException($"blocks.0.mlp.fc1.weight has shape {fc1.ShapeString}, expected [F, {d}].");
        int mlp = fc1.Shape[0];
        int classes = sd.TryGetValue("head.weight", out var hw) && hw.Rank == 2 ? hw.Shape[0] : 0;
        bool fcNorm = sd.ContainsKey("fc_norm.weight"), preNorm = sd.ContainsKey("norm_pre.weight");
        int h = heads ?? Math.Max(1, d / 64);
        return new VitConfig
        {
            ImageSize = grid * p, PatchSize = p, InChannels = pw.Shape[1], Dim = d, Depth = depth, Heads = h, MlpDim = mlp, NumClasses = classes,
            LayerNormEps = layerNormEps ?? (preNorm ? 1e-5f : 1e-6f), ClassToken = cls, DistillationToken = dist, RegisterTokens = regs,
            NoEmbedClass = noEmbedClass, PreNorm = preNorm, PatchBias = sd.ContainsKey("patch_embed.proj.bias"), QkvBias = sd.ContainsKey("blocks.0.attn.qkv.bias"),
            LayerScale = sd.ContainsKey("blocks.0.ls1.gamma"), Activation = activation,
            GlobalPool = fcNorm || !cls ? VitPooling.Average : VitPooling.Token, FcNorm = fcNorm,
        };
    }

    static bool IsSquare(int n, out int root)
    {
        root = n > 0 ? (int)Math.Round(Math.Sqrt(n)) : 0;
        return n > 0 && (long)root * root == n;
    }
}

/// <summary>A known pretrained checkpoint: architecture, preprocessing, where it is published, licence.</summary>
public sealed record PretrainedConfig(string Id, VitConfig Architecture, PreprocessConfig Preprocess, string HubRepo, string FileName, string License);
