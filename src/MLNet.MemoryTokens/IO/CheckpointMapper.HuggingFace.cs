using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.IO;

public static partial class CheckpointMapper
{
    const string HfPatchWeight = "embeddings.patch_embeddings.projection.weight";

    /// <summary>Hugging Face transformers ViT-family models → timm: <c>ViTModel</c> / <c>ViTForImageClassification</c>
    /// (<c>vit.</c> prefix, top-level <c>classifier</c>), DeiT (<c>deit.</c>, the distillation token and
    /// <c>cls_classifier</c>/<c>distillation_classifier</c> of <c>DeiTForImageClassificationWithTeacher</c> as timm's
    /// <c>head</c>/<c>head_dist</c>), <c>Dinov2Model</c> (LayerScale <c>lambda1</c> → <c>ls*.gamma</c>) and
    /// <c>Dinov2WithRegistersModel</c> (registers → <c>reg_token</c>; as timm converts DINOv2 with registers to
    /// <c>no_embed_class</c>: the class token's position folded into it, the position embedding kept for the patches only).
    /// The <c>pooler</c> and the <c>mask_token</c> (masked-image modelling only) are dropped.</summary>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> raw) => FromHuggingFace(raw, out _);

    /// <inheritdoc cref="FromHuggingFace(IReadOnlyDictionary{string, Tensor})"/>
    /// <param name="raw">The Hugging Face state dict.</param>
    /// <param name="ignored">Keys dropped on purpose (the pooler, the mask token).</param>
    /// <exception cref="CheckpointException">A classifier that does not read the class token alone (DINOv2's reads the class
    /// token and the patch mean concatenated), or register tokens whose position embedding cannot be split.</exception>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> raw, out IReadOnlyList<string> ignored)
    {
        ArgumentNullException.ThrowIfNull(raw);
        string prefix = HfPrefix(raw.Keys);
        var result = new Dictionary<string, Tensor>();
        var sources = new Dictionary<string, string>();
        var dropped = new List<string>();
        var qkv = new QkvStacker();
        int width = raw.TryGetValue(prefix + HfPatchWeight, out var pw) && pw.Rank == 4 ? pw.Shape[0] : -1;

        foreach (var (key, tensor) in raw)
        {
            string name = key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;
            if (name.StartsWith("pooler.", StringComparison.Ordinal) || name == "embeddings.mask_token")
            {
                dropped.Add(key);  // the tanh pooler feeds nothing timm has; the mask token only masked-image modelling reads
                continue;
            }

            var layer = HfLayerRegex().Match(name);
            if (layer.Success)
            {
                int i = int.Parse(layer.Groups[1].Value);
                string module = layer.Groups[2].Value, param = layer.Groups[3].Value;
                if (module is "attention.attention.query" or "attention.attention.key" or "attention.attention.value")
                {
                    qkv.Add(i, param, module["attention.attention.".Length..], tensor, key);  // each [D, D] / [D], Linear layout like timm's
                    continue;
                }
                string? ours = (module, param) switch
                {
                    ("layer_scale1", "lambda1") => "ls1.gamma",        // Dinov2LayerScale
                    ("layer_scale2", "lambda1") => "ls2.gamma",
                    (_, "lambda1") => null,
                    _ => module switch
                    {
                        "layernorm_before" or "norm1" => $"norm1.{param}",  // ViT/DeiT name | DINOv2 name
                        "attention.output.dense" => $"attn.proj.{param}",
                        "layernorm_after" or "norm2" => $"norm2.{param}",
                        "intermediate.dense" or "mlp.fc1" => $"mlp.fc1.{param}",
                        "output.dense" or "mlp.fc2" => $"mlp.fc2.{param}",
                        _ => null,
                    },
                };
                Put(result, sources, ours is null ? key : $"blocks.{i}.{ours}", tensor, key);
                continue;
            }

            if (name is "classifier.weight" or "cls_classifier.weight" && width > 0 && tensor.Rank == 2 && tensor.Shape[1] != width)
                throw new CheckpointException(null,
                    $"'{key}' has shape {tensor.ShapeString}: a classifier over {tensor.Shape[1]} features, not the {width}-wide class token " +
                    "(DINOv2's classifier reads the class token and the patch mean concatenated); load the backbone without its head", key);
            string target = name switch
            {
                "embeddings.cls_token" => "cls_token",
                "embeddings.distillation_token" => "dist_token",
                "embeddings.register_tokens" => "reg_token",
                "embeddings.position_embeddings" => "pos_embed",
                HfPatchWeight => "patch_embed.proj.weight",
                "embeddings.patch_embeddings.projection.bias" => "patch_embed.proj.bias",
                "layernorm.weight" => "norm.weight",
                "layernorm.bias" => "norm.bias",
                // classification heads sit outside the model prefix: ViT/DeiT "classifier", DeiT with teacher its two heads
                "classifier.weight" or "cls_classifier.weight" => "head.weight",
                "classifier.bias" or "cls_classifier.bias" => "head.bias",
                "distillation_classifier.weight" => "head_dist.weight",
                "distillation_classifier.bias" => "head_dist.bias",
                _ => key,
            };
            Put(result, sources, target, tensor, key);
        }
        qkv.StackInto(result, sources);
        if (result.ContainsKey("reg_token")) FoldClassPosition(result, prefix + "embeddings.position_embeddings");
        ignored = dropped;
        return result;
    }

    /// <summary>DINOv2 with registers → timm's <c>no_embed_class</c> layout (as timm's <c>_convert_dinov2</c>): registers carry
    /// no position, so the class token's is folded into it (cls + pos[0]) and pos keeps the patch rows (pos[1:]).</summary>
    static void FoldClassPosition(Dictionary<string, Tensor> sd, string posKey)
    {
        if (!sd.TryGetValue("cls_token", out var cls) || !sd.TryGetValue("pos_embed", out var pos)) return;   // the strict check names what is missing
        if (pos.Rank != 3 || pos.Shape[0] != 1 || pos.Shape[1] < 2 || cls.Rank != 3 || cls.Length != pos.Shape[2])
            throw new CheckpointException(null, $"'{posKey}' has shape {pos.ShapeString}; expected [1, 1 + P, {cls.Shape[^1]}] beside register tokens", posKey);
        int d = pos.Shape[2], n = pos.Shape[1];
        var folded = new Tensor([1, 1, d]);
        for (int c = 0; c < d; c++) folded.Data[c] = cls.Data[c] + pos.Data[c];
        sd["cls_token"] = folded;
        sd["pos_embed"] = new Tensor([1, n - 1, d], pos.Data.AsSpan(d).ToArray());
    }

    /// <summary>What precedes <c>embeddings.</c>/<c>encoder.</c>: "vit.", "deit.", "dinov2." for the classification models, "" for the bare ones.</summary>
    static string HfPrefix(IEnumerable<string> keys)
    {
        foreach (var k in keys)
            if (k.EndsWith(HfPatchWeight, StringComparison.Ordinal)) return k[..^HfPatchWeight.Length];
        foreach (var k in keys)
        {
            int at = k.IndexOf("encoder.layer.", StringComparison.Ordinal);
            if (at >= 0) return k[..at];
        }
        return "";
    }

    [GeneratedRegex(@"^encoder\.layer\.(\d{1,6})\.(.+)\.(weight|bias|lambda1)$")]
    private static partial Regex HfLayerRegex();
}
