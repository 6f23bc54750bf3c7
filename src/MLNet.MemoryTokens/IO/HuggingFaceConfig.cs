using System.Text.Json;

namespace MLNet.MemoryTokens.IO;

/// <summary>What a Hugging Face model folder's <c>config.json</c> says that the weights cannot: attention heads, the LayerNorm
/// epsilon, the MLP activation (the vision tower's, for a CLIP model). Read when it sits beside a Hugging Face checkpoint.</summary>
/// <param name="Heads"><c>num_attention_heads</c>, or null.</param>
/// <param name="LayerNormEps"><c>layer_norm_eps</c>, or null.</param>
/// <param name="Activation"><c>hidden_act</c> as written ("gelu", "quick_gelu", …), or null.</param>
public sealed record HuggingFaceConfig(int? Heads, float? LayerNormEps, string? Activation)
{
    /// <summary>The <c>config.json</c> beside <paramref name="checkpointPath"/>, or null when there is none.</summary>
    /// <exception cref="CheckpointException">The file is there but not a JSON object.</exception>
    /// <exception cref="InputFileException">It is not a regular file, or beyond the size limit for text files.</exception>
    public static HuggingFaceConfig? ReadBeside(string checkpointPath)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, "config.json");
        if (InputFile.Stat(path) is null) return null;
        try
        {
            using var doc = JsonDocument.Parse(InputFile.ReadAllText(path, Limits.MaxTextFileBytes, "Hugging Face config.json"));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, "config.json is not a JSON object");
            // a CLIPModel's config nests the image tower's settings
            var vision = root.TryGetProperty("vision_config", out var v) && v.ValueKind == JsonValueKind.Object ? v : root;
            int? heads = vision.TryGetProperty("num_attention_heads", out var h) && h.TryGetInt32(out int hv) ? hv : null;
            float? eps = vision.TryGetProperty("layer_norm_eps", out var e) && e.ValueKind == JsonValueKind.Number ? (float)e.GetDouble() : null;
            string? act = vision.TryGetProperty("hidden_act", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
            return new HuggingFaceConfig(heads, eps, act);
        }
        catch (JsonException ex) { throw new CheckpointException(path, $"config.json is not valid JSON ({ex.Message})", inner: ex); }
    }
}
