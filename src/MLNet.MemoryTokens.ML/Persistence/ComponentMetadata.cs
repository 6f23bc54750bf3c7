using System.Text.Json;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML.Persistence;

/// <summary>What an ML.NET component needs beyond the engine's adapter to come back as it was: its columns, the label's
/// key values, its batch size. Stored inside the adapter's own config (<c>training.mlnet</c> in adapter_config.json), so
/// the folder stays one atomic unit that the engine and CLI read unchanged.</summary>
internal sealed record ComponentMetadata
{
    public const string Key = "mlnet";
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>"classifier" or "vqt-featurizer".</summary>
    public string Component { get; init; } = "classifier";
    public string ImageColumn { get; init; } = "Image";
    public string? ImageFolder { get; init; }
    public string? LabelColumn { get; init; }
    /// <summary>Classifier: Score, PredictedLabel. Featurizer: Features.</summary>
    public string[] OutputColumns { get; init; } = [];
    public int KeyCount { get; init; }
    public string? KeyValueType { get; init; }
    public string[]? KeyValues { get; init; }
    public int InferenceBatchSize { get; init; } = 32;

    public static ComponentMetadata? Read(Adapter adapter)
    {
        if (!adapter.Config.Training.TryGetValue(Key, out var element)) return null;
        try { return element.Deserialize<ComponentMetadata>(Json); }
        catch (JsonException e) { throw new InvalidDataException($"The adapter's '{Key}' section is not readable: {e.Message}", e); }
    }

    public Adapter AttachTo(Adapter adapter)
    {
        var training = new Dictionary<string, JsonElement>(adapter.Config.Training) { [Key] = JsonSerializer.SerializeToElement(this, Json) };
        return new Adapter(adapter.Config with { Training = training }, adapter.Tensors);
    }

    /// <summary>The label keys recorded here, or (an engine/CLI adapter) its class labels as text key values.</summary>
    public static LabelKeys KeysOf(ComponentMetadata? metadata, Adapter adapter)
    {
        var labels = adapter.Config.ClassLabels;
        return metadata is { KeyCount: > 0 }
            ? LabelKeys.Restore(metadata.KeyCount, metadata.KeyValueType, metadata.KeyValues, labels)
            : LabelKeys.Restore(labels.Length, "Text", labels, labels);
    }
}
