using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>Where a task's head reads: the backbone's pooled output (the final-norm class token, or what its pooling gives),
/// the final-norm row of the last attention-masked task in <see cref="AdaptedForward.Tasks"/>, or the VQT features
/// [normalised pooled output | normalised query outputs of each layer].</summary>
public enum HeadInput { Pooled, TaskRow, QueryFeatures }

/// <summary>An attention-masked task's row in the stream: its class token [1, 1, D], its memory [L, m, D], and the tasks
/// (indices into <see cref="AdaptedForward.Tasks"/>, itself included) whose rows and memory it reads besides the original tokens.</summary>
public sealed record MaskedTask(string Name, Tensor ClassToken, Tensor Memory, int[] Reads);

/// <summary>How one adapter changes the backbone's forward, read from its file's tensors (their documented format, not any
/// engine model): what an exporter builds the adapted graph from. Each method says it once, in the method table
/// (<see cref="TuningMethodDefinition.DescribeForward"/>); the head's tensors (<c>head.weight</c> [C, K], <c>head.bias</c>
/// [C]) are every method's.</summary>
public sealed record AdaptedForward
{
    /// <summary>[1, 1, D] a trained class token for row 0 (plain memory, head + class token, VQT + memory), or null: the backbone's.</summary>
    public Tensor? ClassToken { get; init; }
    /// <summary>Every trunk weight by timm name (full fine-tuning), or null: the backbone's.</summary>
    public IReadOnlyDictionary<string, Tensor>? Trunk { get; init; }
    /// <summary>[L, m, D] plain memory: each layer's m rows join the original tokens' keys/values (never queried).</summary>
    public Tensor? StreamMemory { get; init; }
    /// <summary>Attention-masked tasks in stream order: the ones an extension reads first, this one last.</summary>
    public IReadOnlyList<MaskedTask> Tasks { get; init; } = [];
    /// <summary>[L, T, D] VQT query tokens.</summary>
    public Tensor? Queries { get; init; }
    /// <summary>With <see cref="StreamMemory"/> and <see cref="Queries"/> (VQT + memory): the queries read each layer's memory
    /// rows too (keys/values as the original rows see them), besides the original tokens.</summary>
    public bool QueriesReadMemory { get; init; }
    public HeadInput Head { get; init; } = HeadInput.Pooled;
    /// <summary>The feature indices a compressed VQT head reads (ascending), or null: all of them.</summary>
    public int[]? KeptFeatures { get; init; }

    /// <summary>K: the width of what the head reads (D; D·(1 + L·T) VQT features, or the kept ones).</summary>
    public int HeadFeatures(VitConfig c) =>
        Head == HeadInput.QueryFeatures ? KeptFeatures?.Length ?? c.Dim * (1 + c.Depth * Queries!.Shape[1]) : c.Dim;
}
