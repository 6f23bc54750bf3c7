using MLNet.MemoryTokens.Imaging;

namespace MLNet.MemoryTokens.Model;

/// <summary>Architecture of a timm <c>VisionTransformer</c>: pre-norm blocks, class token, learned absolute position embedding.</summary>
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

    public int GridSize => ImageSize / PatchSize;
    public int NumPatches => GridSize * GridSize;
    /// <summary>Prefix tokens before the patches (the class token).</summary>
    public int PrefixTokens => 1;
    public int NumTokens => PrefixTokens + NumPatches;
    public int HeadDim => Dim / Heads;

    /// <summary>Throws when the numbers cannot describe a ViT.</summary>
    public void Validate()
    {
        if (PatchSize <= 0 || ImageSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"Image size {ImageSize} must be a positive multiple of patch size {PatchSize}.");
        if (Dim <= 0 || Heads <= 0 || Dim % Heads != 0) throw new ArgumentException($"Width {Dim} must be a positive multiple of heads {Heads}.");
        if (Depth <= 0 || MlpDim <= 0 || InChannels <= 0 || NumClasses < 0) throw new ArgumentException($"Invalid ViT config {this}.");
        Limits.Check("The image size", ImageSize, PatchSize, Limits.MaxImageSize);
        Limits.Check($"The number of patch tokens ({ImageSize}/{PatchSize})²", (int)Math.Min(int.MaxValue, (long)GridSize * GridSize), 1, Limits.MaxPatchTokens,
            "Use a smaller image size.");
        Limits.Check("The number of classes", NumClasses, 0, Limits.MaxClasses);
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
        var s = new Dictionary<string, int[]>
        {
            ["cls_token"] = [1, 1, d],
            ["pos_embed"] = [1, NumTokens, d],
            ["patch_embed.proj.weight"] = [d, InChannels, p, p],
            ["patch_embed.proj.bias"] = [d],
        };
        for (int i = 0; i < Depth; i++)
        {
            string b = $"blocks.{i}.";
            s[b + "norm1.weight"] = [d]; s[b + "norm1.bias"] = [d];
            s[b + "attn.qkv.weight"] = [3 * d, d]; s[b + "attn.qkv.bias"] = [3 * d];
            s[b + "attn.proj.weight"] = [d, d]; s[b + "attn.proj.bias"] = [d];
            s[b + "norm2.weight"] = [d]; s[b + "norm2.bias"] = [d];
            s[b + "mlp.fc1.weight"] = [MlpDim, d]; s[b + "mlp.fc1.bias"] = [MlpDim];
            s[b + "mlp.fc2.weight"] = [d, MlpDim]; s[b + "mlp.fc2.bias"] = [d];
        }
        s["norm.weight"] = [d]; s["norm.bias"] = [d];
        if (NumClasses > 0) { s["head.weight"] = [NumClasses, d]; s["head.bias"] = [NumClasses]; }
        return s;
    }

    /// <summary>Infers the architecture from a timm-named state dict (depth from block keys, heads given or by the d/64 rule).</summary>
    public static VitConfig FromStateDict(IReadOnlyDictionary<string, Tensor> sd, int? heads = null, float layerNormEps = 1e-6f)
    {
        Tensor Need(string key) => sd.TryGetValue(key, out var t) ? t : throw new ArgumentException($"Checkpoint has no '{key}': not a timm VisionTransformer state dict.");
        var pw = Need("patch_embed.proj.weight");
        if (pw.Rank != 4 || pw.Shape[2] != pw.Shape[3]) throw new ArgumentException($"patch_embed.proj.weight has shape {pw.ShapeString}, expected [D, C, p, p].");
        int d = pw.Shape[0], p = pw.Shape[2];
        var pos = Need("pos_embed");
        if (pos.Rank != 3 || pos.Shape[2] != d) throw new ArgumentException($"pos_embed has shape {pos.ShapeString}, expected [1, N, {d}].");
        int grid = (int)Math.Round(Math.Sqrt(pos.Shape[1] - 1));
        if ((long)grid * grid + 1 != pos.Shape[1]) throw new ArgumentException($"pos_embed has {pos.Shape[1]} tokens: not 1 class token + a square grid.");
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
        int h = heads ?? Math.Max(1, d / 64);
        return new VitConfig { ImageSize = grid * p, PatchSize = p, InChannels = pw.Shape[1], Dim = d, Depth = depth, Heads = h, MlpDim = mlp, NumClasses = classes, LayerNormEps = layerNormEps };
    }
}

/// <summary>A known pretrained checkpoint: architecture, preprocessing, where it is published, licence.</summary>
public sealed record PretrainedConfig(string Id, VitConfig Architecture, PreprocessConfig Preprocess, string HubRepo, string FileName, string License);
