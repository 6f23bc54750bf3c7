using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.IO;

public static partial class CheckpointMapper
{
    const string BvPatchKernel = "embedding/kernel";
    const string BvEncoder = "Transformer/encoderblock_";

    /// <summary>Google big_vision / AugReg <c>.npz</c> → timm, the conversion timm's <c>_load_weights</c> performs.
    /// An optional key prefix (<c>opt/target/</c>, <c>params/</c>, …) is detected; keys outside it are dropped.</summary>
    /// <exception cref="CheckpointException">A <c>pre_logits</c> layer is present (not part of timm's ViT), or a tensor has the wrong rank.</exception>
    public static Dictionary<string, Tensor> FromBigVision(IReadOnlyDictionary<string, Tensor> raw) => FromBigVision(raw, out _);

    /// <inheritdoc cref="FromBigVision(IReadOnlyDictionary{string, Tensor})"/>
    /// <param name="raw">The big_vision arrays by npz key.</param>
    /// <param name="ignored">Keys dropped on purpose (outside the parameter prefix, e.g. optimizer state).</param>
    public static Dictionary<string, Tensor> FromBigVision(IReadOnlyDictionary<string, Tensor> raw, out IReadOnlyList<string> ignored)
    {
        ArgumentNullException.ThrowIfNull(raw);
        string prefix = BvPrefix(raw.Keys);
        var result = new Dictionary<string, Tensor>();
        var sources = new Dictionary<string, string>();
        var dropped = new List<string>();
        var qkv = new QkvStacker();

        foreach (var (key, t) in raw)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                dropped.Add(key);
                continue;
            }
            string name = key[prefix.Length..];
            if (name.StartsWith("pre_logits/", StringComparison.Ordinal))
                throw new CheckpointException(null,
                    $"'{key}': a pre_logits (representation) layer is not supported; timm's VisionTransformer has none " +
                    "(use a checkpoint without it, e.g. the AugReg fine-tuned ones)", key);

            var block = BvBlockRegex().Match(name);
            if (block.Success)
            {
                int i = int.Parse(block.Groups[1].Value);
                var (target, value) = BlockParam(i, block.Groups[2].Value, key, t, qkv);
                if (target is not null) Put(result, sources, target, value!, key);
                continue;
            }

            switch (name)
            {
                case BvPatchKernel:
                    if (t.Rank != 4) throw RankError(key, t, "[p, p, 3, D]");
                    Put(result, sources, "patch_embed.proj.weight", TensorLayout.Permute(t, 3, 2, 0, 1), key);  // [p,p,C,D] → [D,C,p,p]
                    break;
                case "embedding/bias": Put(result, sources, "patch_embed.proj.bias", t, key); break;
                case "cls": Put(result, sources, "cls_token", t, key); break;
                case "Transformer/posembed_input/pos_embedding": Put(result, sources, "pos_embed", t, key); break;
                case "Transformer/encoder_norm/scale": Put(result, sources, "norm.weight", t, key); break;
                case "Transformer/encoder_norm/bias": Put(result, sources, "norm.bias", t, key); break;
                case "head/kernel":
                    if (t.Rank != 2) throw RankError(key, t, "[D, classes]");
                    Put(result, sources, "head.weight", TensorLayout.Transpose2D(t), key);  // [D,C] → [C,D]
                    break;
                case "head/bias": Put(result, sources, "head.bias", t, key); break;
                default: Put(result, sources, key, t, key); break;  // unknown: left for the strict check to report
            }
        }
        qkv.StackInto(result, sources);
        ignored = dropped;
        return result;
    }

    /// <summary>One <c>encoderblock_{i}/</c> parameter → its timm name and layout, or (null, null) when handed to <paramref name="qkv"/>.
    /// Linen numbering: LayerNorm_0 (norm1), MultiHeadDotProductAttention_1, LayerNorm_2 (norm2), MlpBlock_3.</summary>
    static (string? Name, Tensor? Value) BlockParam(int i, string param, string key, Tensor t, QkvStacker qkv)
    {
        string b = $"blocks.{i}.";
        var parts = param.Split('/');
        string leaf = parts[^1] is "scale" or "kernel" ? "weight" : parts[^1];  // Flax's names for LayerNorm/Dense weights
        switch (parts)
        {
            case ["LayerNorm_0", "scale" or "bias"]: return (b + "norm1." + leaf, t);
            case ["LayerNorm_2", "scale" or "bias"]: return (b + "norm2." + leaf, t);
            case ["MultiHeadDotProductAttention_1", ("query" or "key" or "value") and var part, "kernel"]:
                if (t.Rank < 2) throw RankError(key, t, "[D, heads, head_dim]");
                // [D, H, hd] → [D, H·hd] → [H·hd, D]
                qkv.Add(i, "weight", part, TensorLayout.Transpose2D(TensorLayout.Reshape(t, t.Shape[0], t.Length / Math.Max(t.Shape[0], 1))), key);
                return (null, null);
            case ["MultiHeadDotProductAttention_1", ("query" or "key" or "value") and var part, "bias"]:
                qkv.Add(i, "bias", part, TensorLayout.Reshape(t, t.Length), key);  // [H, hd] → [H·hd]
                return (null, null);
            case ["MultiHeadDotProductAttention_1", "out", "kernel"]:
                if (t.Rank < 2) throw RankError(key, t, "[heads, head_dim, D]");
                // [H, hd, D] → [H·hd, D] → [D, H·hd]
                int d = t.Shape[^1];
                return (b + "attn.proj.weight", TensorLayout.Transpose2D(TensorLayout.Reshape(t, t.Length / Math.Max(d, 1), d)));
            case ["MultiHeadDotProductAttention_1", "out", "bias"]: return (b + "attn.proj.bias", t);
            case ["MlpBlock_3", ("Dense_0" or "Dense_1") and var dense, "kernel" or "bias"]:
                string fc = b + (dense == "Dense_0" ? "mlp.fc1." : "mlp.fc2.") + leaf;
                if (leaf == "bias") return (fc, t);
                if (t.Rank != 2) throw RankError(key, t, "[in, out]");
                return (fc, TensorLayout.Transpose2D(t));  // [in, out] → [out, in]
            default:
                return (key, t);  // unknown: left for the strict check to report
        }
    }

    /// <summary>Whatever precedes <c>embedding/kernel</c> (or <c>Transformer/</c>): "", "opt/target/", "params/", ….</summary>
    static string BvPrefix(IEnumerable<string> keys)
    {
        foreach (var k in keys)
            if (k.EndsWith(BvPatchKernel, StringComparison.Ordinal) && (k.Length == BvPatchKernel.Length || k[^(BvPatchKernel.Length + 1)] == '/'))
                return k[..^BvPatchKernel.Length];
        foreach (var k in keys)
        {
            int at = k.IndexOf(BvEncoder, StringComparison.Ordinal);
            if (at >= 0) return k[..at];
        }
        return "";
    }

    [GeneratedRegex(@"^Transformer/encoderblock_(\d{1,6})/(.+)$")]
    private static partial Regex BvBlockRegex();
}
