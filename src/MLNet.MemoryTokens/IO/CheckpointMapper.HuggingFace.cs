using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.IO;

public static partial class CheckpointMapper
{
    const string HfPatchWeight = "embeddings.patch_embeddings.projection.weight";

    /// <summary>Hugging Face transformers ViT → timm. Handles <c>ViTForImageClassification</c> (<c>vit.</c> prefix, top-level
    /// <c>classifier</c>) and bare <c>ViTModel</c> keys; the <c>pooler</c> is dropped.</summary>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> raw) => FromHuggingFace(raw, out _);

    /// <inheritdoc cref="FromHuggingFace(IReadOnlyDictionary{string, Tensor})"/>
    /// <param name="raw">The Hugging Face state dict.</param>
    /// <param name="ignored">Keys dropped on purpose (the pooler).</param>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> raw, out IReadOnlyList<string> ignored)
    {
        ArgumentNullException.ThrowIfNull(raw);
        string prefix = HfPrefix(raw.Keys);
        var result = new Dictionary<string, Tensor>();
        var sources = new Dictionary<string, string>();
        var dropped = new List<string>();
        var qkv = new QkvStacker();

        foreach (var (key, tensor) in raw)
        {
            string name = key.StartsWith(prefix, StringComparison.Ordinal) ? key[prefix.Length..] : key;
            if (name.StartsWith("pooler.", StringComparison.Ordinal))
            {
                dropped.Add(key);  // the tanh pooler feeds nothing timm has
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
                string? ours = module switch
                {
                    "layernorm_before" => "norm1",
                    "attention.output.dense" => "attn.proj",
                    "layernorm_after" => "norm2",
                    "intermediate.dense" => "mlp.fc1",
                    "output.dense" => "mlp.fc2",
                    _ => null,
                };
                Put(result, sources, ours is null ? key : $"blocks.{i}.{ours}.{param}", tensor, key);
                continue;
            }

            string target = name switch
            {
                "embeddings.cls_token" => "cls_token",
                "embeddings.position_embeddings" => "pos_embed",
                HfPatchWeight => "patch_embed.proj.weight",
                "embeddings.patch_embeddings.projection.bias" => "patch_embed.proj.bias",
                "layernorm.weight" => "norm.weight",
                "layernorm.bias" => "norm.bias",
                "classifier.weight" => "head.weight",  // ViTForImageClassification keeps it outside the "vit." prefix
                "classifier.bias" => "head.bias",
                _ => key,
            };
            Put(result, sources, target, tensor, key);
        }
        qkv.StackInto(result, sources);
        ignored = dropped;
        return result;
    }

    /// <summary>What precedes <c>embeddings.</c>/<c>encoder.</c>: "vit." for ViTForImageClassification, "" for ViTModel.</summary>
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

    [GeneratedRegex(@"^encoder\.layer\.(\d{1,6})\.(.+)\.(weight|bias)$")]
    private static partial Regex HfLayerRegex();
}
