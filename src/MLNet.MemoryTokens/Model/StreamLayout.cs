namespace MLNet.MemoryTokens.Model;

/// <summary>Where each kind of row sits in one sample's stream: the original tokens first (the prefix — the class token —
/// then the patches), then the rows a tuned model adds: one class-token row per attention-masked task, the layer's memory
/// tokens when they ride in the stream (plain memory: rewritten before every block, dropped after it), the layer's query
/// tokens (VQT). Every model reads offsets from here instead of adding them up itself.</summary>
/// <param name="PrefixTokens">Rows before the patches: the class token, a distillation token, register tokens (as the config has them).</param>
/// <param name="Patches">Patch rows P (0 for a stream of query rows alone, as VQT's query paths run).</param>
/// <param name="TaskRows">Class-token rows of attention-masked tasks, one per task.</param>
/// <param name="MemoryRows">Memory rows m carried in the stream (plain memory tokens).</param>
/// <param name="QueryRows">Query rows T (VQT composed with memory; VQT alone).</param>
public sealed record StreamLayout(int PrefixTokens, int Patches, int TaskRows = 0, int MemoryRows = 0, int QueryRows = 0)
{
    /// <summary>The backbone's stream (N = prefix + patch rows), with any rows a model adds after the originals.</summary>
    public static StreamLayout Of(VitConfig config, int taskRows = 0, int memoryRows = 0, int queryRows = 0) =>
        new(config.PrefixTokens, config.NumPatches, taskRows, memoryRows, queryRows);

    /// <summary>Row of the backbone's class token (models with one).</summary>
    public int ClassTokenRow => 0;
    /// <summary>First patch row.</summary>
    public int PatchRow0 => PrefixTokens;
    /// <summary>N: the backbone's own rows (prefix and patches); they never read rows added after them unless a group says so.</summary>
    public int Originals => PrefixTokens + Patches;
    /// <summary>First task class-token row.</summary>
    public int TaskRow0 => Originals;
    /// <summary>First memory row.</summary>
    public int MemoryRow0 => TaskRow0 + TaskRows;
    /// <summary>First query row.</summary>
    public int QueryRow0 => MemoryRow0 + MemoryRows;
    /// <summary>S: rows per sample.</summary>
    public int Rows => QueryRow0 + QueryRows;

    /// <summary>Row of task <paramref name="task"/>'s class token.</summary>
    public int TaskRow(int task) => TaskRow0 + task;

    /// <summary>The rows the backbone's pooling reads after the last block: the class token (token pooling), the class and
    /// distillation tokens (distilled), or every patch row (average pooling, prefix tokens excluded as timm's 'avg').</summary>
    public LiveRows ReadoutRows(VitConfig config) =>
        config.GlobalPool == VitPooling.Average ? new LiveRows((PatchRow0, Patches)) : new LiveRows((ClassTokenRow, config.DistillationToken ? 2 : 1));
}
