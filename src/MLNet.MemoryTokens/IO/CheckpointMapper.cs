namespace MLNet.MemoryTokens.IO;

/// <summary>Converts foreign ViT state dicts to timm names and layouts. Pure functions: no I/O, errors carry the key but no file.</summary>
/// <remarks>Keys the mapper does not recognise pass through unchanged, so a strict load (<see cref="StateDictValidator"/>) reports them;
/// keys known to be irrelevant (a pooler, optimizer state) are dropped and listed as ignored. Output tensors may share
/// their data arrays with the input where nothing had to be rearranged.</remarks>
public static partial class CheckpointMapper
{
    /// <summary>Which layout <paramref name="keys"/> come from.</summary>
    /// <exception cref="CheckpointException">No known layout matches.</exception>
    public static CheckpointLayout Detect(IReadOnlyCollection<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Any(k => k.EndsWith(HfClipPatchWeight, StringComparison.Ordinal))) return CheckpointLayout.HuggingFaceClip;
        if (keys.Any(k => k == OpenClipPatchWeight)) return CheckpointLayout.OpenClip;
        if (keys.Any(k => k.EndsWith(HfPatchWeight, StringComparison.Ordinal) || k.Contains("encoder.layer.", StringComparison.Ordinal)))
            return CheckpointLayout.HuggingFace;
        if (keys.Any(k => k.EndsWith(BvPatchKernel, StringComparison.Ordinal) || k.Contains(BvEncoder, StringComparison.Ordinal)))
            return CheckpointLayout.BigVision;
        if (keys.Any(k => k is "cls_token" or "pos_embed" or "patch_embed.proj.weight" || k.StartsWith("blocks.", StringComparison.Ordinal)))
            return CheckpointLayout.Timm;
        throw new CheckpointException(null,
            $"not a recognised ViT checkpoint (timm, Hugging Face, CLIP/OpenCLIP or big_vision); its {keys.Count} keys start with: " +
            string.Join(", ", keys.Take(5).Select(k => $"'{k}'")));
    }

    /// <summary>Detects the layout and converts to timm names and layouts.</summary>
    public static Dictionary<string, Tensor> ToTimm(IReadOnlyDictionary<string, Tensor> raw) => ToTimm(raw, out _);

    /// <summary>Detects the layout and converts to timm names and layouts; <paramref name="ignored"/> lists the keys dropped on purpose.</summary>
    public static Dictionary<string, Tensor> ToTimm(IReadOnlyDictionary<string, Tensor> raw, out IReadOnlyList<string> ignored)
    {
        ArgumentNullException.ThrowIfNull(raw);
        switch (Detect(raw.Keys.ToArray()))
        {
            case CheckpointLayout.HuggingFace: return FromHuggingFace(raw, out ignored);
            case CheckpointLayout.BigVision: return FromBigVision(raw, out ignored);
            case CheckpointLayout.HuggingFaceClip: return FromHuggingFaceClip(raw, out ignored);
            case CheckpointLayout.OpenClip: return FromOpenClip(raw, out ignored);
            default:
                ignored = [];
                return new Dictionary<string, Tensor>(raw);
        }
    }

    /// <summary>Adds <paramref name="tensor"/> as <paramref name="name"/>, refusing two source keys that map to one name.</summary>
    static void Put(Dictionary<string, Tensor> result, Dictionary<string, string> sources, string name, Tensor tensor, string sourceKey)
    {
        if (!sources.TryAdd(name, sourceKey))
            throw new CheckpointException(null, $"both '{sources[name]}' and '{sourceKey}' map to '{name}'", sourceKey);
        result[name] = tensor;
    }

    static CheckpointException RankError(string key, Tensor t, string expected) =>
        new(null, $"'{key}' has shape {t.ShapeString}; expected {expected}", key);

    /// <summary>Collects per-block query/key/value parts (each already [out, in] or [out]) and stacks them into timm's
    /// fused <c>blocks.{i}.attn.qkv.{weight,bias}</c>: rows q, then k, then v.</summary>
    sealed class QkvStacker
    {
        static readonly string[] Parts = ["query", "key", "value"];
        readonly SortedDictionary<(int Block, string Param), (Tensor Tensor, string Key)?[]> groups = new();

        public void Add(int block, string param, string part, Tensor tensor, string sourceKey)
        {
            if (!groups.TryGetValue((block, param), out var slots)) groups[(block, param)] = slots = new (Tensor, string)?[3];
            slots[Array.IndexOf(Parts, part)] = (tensor, sourceKey);
        }

        public void StackInto(Dictionary<string, Tensor> result, Dictionary<string, string> sources)
        {
            foreach (var ((block, param), slots) in groups)
            {
                string name = $"blocks.{block}.attn.qkv.{param}";
                var present = slots.Where(s => s is not null).Select(s => s!.Value.Key).ToArray();
                int missing = Array.FindIndex(slots, s => s is null);
                if (missing >= 0)
                    throw new CheckpointException(null,
                        $"block {block} has {string.Join(", ", present.Select(k => $"'{k}'"))} but no {Parts[missing]} {param} to stack into '{name}'",
                        present[0]);
                try
                {
                    Put(result, sources, name, TensorLayout.Concat0(slots.Select(s => s!.Value.Tensor).ToArray()), present[0]);
                }
                catch (ArgumentException ex)
                {
                    throw new CheckpointException(null,
                        $"cannot stack {string.Join(", ", slots.Select(s => $"'{s!.Value.Key}' {s.Value.Tensor.ShapeString}"))} into '{name}': shapes differ",
                        present[0], inner: ex);
                }
            }
        }
    }
}
