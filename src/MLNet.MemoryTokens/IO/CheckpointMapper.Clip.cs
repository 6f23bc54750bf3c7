using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.IO;

public static partial class CheckpointMapper
{
    const string HfClipPatchWeight = "vision_model.embeddings.patch_embedding.weight";
    const string OpenClipPatchWeight = "visual.conv1.weight";

    /// <summary>Hugging Face transformers <c>CLIPVisionModel</c> / <c>CLIPModel</c> / <c>CLIPVisionModelWithProjection</c> → timm's
    /// CLIP image tower: <c>pre_layrnorm</c> → <c>norm_pre</c>, split q/k/v stacked, <c>post_layernorm</c> → <c>norm</c>, the
    /// class embedding [D] and the position embedding [N, D] given timm's shapes, and <c>visual_projection</c> as the head
    /// with a zero bias (as timm loads OpenAI's projection). The text tower, its projection, the logit scale and the
    /// <c>position_ids</c> buffer are dropped.</summary>
    public static Dictionary<string, Tensor> FromHuggingFaceClip(IReadOnlyDictionary<string, Tensor> raw, out IReadOnlyList<string> ignored)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var result = new Dictionary<string, Tensor>();
        var sources = new Dictionary<string, string>();
        var dropped = new List<string>();
        var qkv = new QkvStacker();
        foreach (var (key, t) in raw)
        {
            if (!key.StartsWith("vision_model.", StringComparison.Ordinal))
            {
                if (key == "visual_projection.weight") PutProjection(result, sources, t, key, transposed: false);
                else dropped.Add(key);   // the text tower, text_projection, logit_scale
                continue;
            }
            string name = key["vision_model.".Length..];
            var layer = HfClipLayerRegex().Match(name);
            if (layer.Success)
            {
                int i = int.Parse(layer.Groups[1].Value);
                string module = layer.Groups[2].Value, param = layer.Groups[3].Value;
                if (module is "self_attn.q_proj" or "self_attn.k_proj" or "self_attn.v_proj")
                {
                    qkv.Add(i, param, module[10] switch { 'q' => "query", 'k' => "key", _ => "value" }, t, key);
                    continue;
                }
                string? ours = module switch
                {
                    "layer_norm1" => "norm1", "self_attn.out_proj" => "attn.proj", "layer_norm2" => "norm2",
                    "mlp.fc1" => "mlp.fc1", "mlp.fc2" => "mlp.fc2", _ => null,
                };
                Put(result, sources, ours is null ? key : $"blocks.{i}.{ours}.{param}", t, key);
                continue;
            }
            switch (name)
            {
                case "embeddings.position_ids": dropped.Add(key); break;   // a buffer: 0..N-1
                case "embeddings.class_embedding":
                    if (t.Rank != 1) throw RankError(key, t, "[D]");
                    Put(result, sources, "cls_token", new Tensor([1, 1, t.Shape[0]], t.Data), key);
                    break;
                case "embeddings.position_embedding.weight":
                    if (t.Rank != 2) throw RankError(key, t, "[N, D]");
                    Put(result, sources, "pos_embed", new Tensor([1, t.Shape[0], t.Shape[1]], t.Data), key);
                    break;
                case "embeddings.patch_embedding.weight": Put(result, sources, "patch_embed.proj.weight", t, key); break;
                case "pre_layrnorm.weight": Put(result, sources, "norm_pre.weight", t, key); break;   // sic: transformers' name
                case "pre_layrnorm.bias": Put(result, sources, "norm_pre.bias", t, key); break;
                case "post_layernorm.weight": Put(result, sources, "norm.weight", t, key); break;
                case "post_layernorm.bias": Put(result, sources, "norm.bias", t, key); break;
                default: Put(result, sources, key, t, key); break;   // unknown: the strict check names it
            }
        }
        qkv.StackInto(result, sources);
        ignored = dropped;
        return result;
    }

    /// <summary>OpenAI CLIP / OpenCLIP (<c>visual.</c> prefix: <c>conv1</c>, <c>ln_pre</c>, <c>transformer.resblocks</c> with a
    /// fused <c>in_proj</c>, <c>ln_post</c>, <c>proj</c> [D, P]) → timm, as timm's <c>_convert_openai_clip</c>: <c>proj</c>
    /// becomes the head (transposed, zero bias). Everything outside <c>visual.</c> (the text tower) is dropped.</summary>
    public static Dictionary<string, Tensor> FromOpenClip(IReadOnlyDictionary<string, Tensor> raw, out IReadOnlyList<string> ignored)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var result = new Dictionary<string, Tensor>();
        var sources = new Dictionary<string, string>();
        var dropped = new List<string>();
        foreach (var (key, t) in raw)
        {
            if (!key.StartsWith("visual.", StringComparison.Ordinal)) { dropped.Add(key); continue; }
            string name = key["visual.".Length..];
            var block = OpenClipBlockRegex().Match(name);
            if (block.Success)
            {
                string? ours = block.Groups[2].Value switch
                {
                    "ln_1.weight" => "norm1.weight", "ln_1.bias" => "norm1.bias",
                    "attn.in_proj_weight" => "attn.qkv.weight", "attn.in_proj_bias" => "attn.qkv.bias",   // q | k | v rows, as timm's
                    "attn.out_proj.weight" => "attn.proj.weight", "attn.out_proj.bias" => "attn.proj.bias",
                    "ln_2.weight" => "norm2.weight", "ln_2.bias" => "norm2.bias",
                    "mlp.c_fc.weight" => "mlp.fc1.weight", "mlp.c_fc.bias" => "mlp.fc1.bias",
                    "mlp.c_proj.weight" => "mlp.fc2.weight", "mlp.c_proj.bias" => "mlp.fc2.bias",
                    _ => null,
                };
                Put(result, sources, ours is null ? key : $"blocks.{block.Groups[1].Value}.{ours}", t, key);
                continue;
            }
            switch (name)
            {
                case "conv1.weight": Put(result, sources, "patch_embed.proj.weight", t, key); break;
                case "class_embedding":
                    if (t.Rank != 1) throw RankError(key, t, "[D]");
                    Put(result, sources, "cls_token", new Tensor([1, 1, t.Shape[0]], t.Data), key);
                    break;
                case "positional_embedding":
                    if (t.Rank != 2) throw RankError(key, t, "[N, D]");
                    Put(result, sources, "pos_embed", new Tensor([1, t.Shape[0], t.Shape[1]], t.Data), key);
                    break;
                case "ln_pre.weight": Put(result, sources, "norm_pre.weight", t, key); break;
                case "ln_pre.bias": Put(result, sources, "norm_pre.bias", t, key); break;
                case "ln_post.weight": Put(result, sources, "norm.weight", t, key); break;
                case "ln_post.bias": Put(result, sources, "norm.bias", t, key); break;
                case "proj": PutProjection(result, sources, t, key, transposed: true); break;
                default: Put(result, sources, key, t, key); break;
            }
        }
        ignored = dropped;
        return result;
    }

    /// <summary>An image projection as timm's head: weight [P, D] (OpenAI's <c>proj</c> is [D, P]: transposed), bias zeros.</summary>
    static void PutProjection(Dictionary<string, Tensor> result, Dictionary<string, string> sources, Tensor t, string key, bool transposed)
    {
        if (t.Rank != 2) throw RankError(key, t, transposed ? "[D, P]" : "[P, D]");
        var w = transposed ? TensorLayout.Permute(t, 1, 0) : t;
        Put(result, sources, "head.weight", w, key);
        Put(result, sources, "head.bias", new Tensor([w.Shape[0]]), key + " (zero bias)");
    }

    [GeneratedRegex(@"^encoder\.layers\.(\d{1,6})\.(.+)\.(weight|bias)$")]
    private static partial Regex HfClipLayerRegex();

    [GeneratedRegex(@"^transformer\.resblocks\.(\d{1,6})\.(.+)$")]
    private static partial Regex OpenClipBlockRegex();
}
