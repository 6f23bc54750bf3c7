using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>What one exported graph computes, read from the backbone's config and weights and the adapters' configs and
/// tensors (their documented file format), independent of how the engine's models hold them.</summary>
/// <remarks>
/// Streams, per image: the original tokens [N, D] (the backbone's, or with plain memory as extra key/value rows and the
/// task's class token), and optionally a side stream of rows that read the original tokens' keys/values but are never read
/// by them: the class-token rows of attention-masked tasks (carried from layer to layer; each reads the rows and memory of
/// the tasks in <see cref="MaskedTask.Reads"/>), or VQT query rows (fresh each layer, collected after the block; with plain
/// memory they read its rows too unless <see cref="ExportPlan.QueriesReadMemory"/> is false).
/// </remarks>
internal sealed record ExportPlan
{
    public required VitConfig Config { get; init; }
    /// <summary>The trunk's weights by timm name (the backbone's, or full fine-tuning's): patch embedding, prefix tokens,
    /// position embedding, norm_pre, blocks, final norm.</summary>
    public required IReadOnlyDictionary<string, Tensor> Trunk { get; init; }
    /// <summary>[1, 1, D] the original stream's class token (a trained one replaces the backbone's), or null: the model has none.</summary>
    public required Tensor? ClassToken { get; init; }
    /// <summary>[L, m, D] plain memory: each layer's m rows join the original tokens' keys/values (never queried, dropped after attention).</summary>
    public Tensor? StreamMemory { get; init; }
    /// <summary>Attention-masked tasks' class-token rows, in stream order.</summary>
    public IReadOnlyList<MaskedTask> TaskRows { get; init; } = [];
    /// <summary>[L, T, D] VQT query tokens.</summary>
    public Tensor? Queries { get; init; }
    /// <summary>With <see cref="StreamMemory"/> and <see cref="Queries"/> (VQT + memory): the queries read the layer's memory
    /// rows too, besides the original tokens.</summary>
    public bool QueriesReadMemory { get; init; }
    public required IReadOnlyList<HeadPlan> Heads { get; init; }
    /// <summary>The blocks' Linear layers in ONNX Runtime's dynamic-quantisation form (<see cref="OnnxExportOptions.QuantizeDynamic"/>).</summary>
    public bool QuantizeLinears { get; init; }
    /// <summary>Name/value pairs stored in the model's metadata (labels, preprocessing).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Whether anything reads the original stream's pooled output after the last block.</summary>
    public bool ReadsPooled => Heads.Any(h => h.From is HeadInput.Pooled or HeadInput.QueryFeatures);
}

/// <summary>One graph output: a linear head (weight [C, K], bias [C]) on a readout, or the readout itself (no weight: the VQT
/// featurizer). <paramref name="Kept"/>: the VQT feature indices a compressed head reads. <c>DistWeight</c> /
/// <c>DistBias</c>: a distilled backbone's own second head, on the distillation token, averaged with the first
/// (the first then reads the class token alone).</summary>
internal sealed record HeadPlan(string Output, HeadInput From, int Row, Tensor? Weight, Tensor? Bias, int[]? Kept, IReadOnlyList<string> Labels)
{
    public Tensor? DistWeight { get; init; }
    public Tensor? DistBias { get; init; }
    public int Width(VitConfig c, int queryTokens) => Weight?.Shape[0] ?? Kept?.Length ?? c.Dim * (1 + c.Depth * queryTokens);
}
