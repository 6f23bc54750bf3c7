using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>Checks every place a training run will write before its first image is decoded, so that a run never ends —
/// hours later — in a refusal or a permission error. The adapter folder is the caller's (check it with
/// <see cref="Adapter.EnsureCanSave"/>, as <c>mmt train</c> does).</summary>
public static class TrainingOutputs
{
    /// <summary>Throws an <see cref="OutputRefusedException"/> unless the checkpoint folder (empty, absent or a checkpoint
    /// of ours) and the VQT cache folder can be written.</summary>
    public static void EnsureWritable(TuningOptions tuning, TrainingOptions options)
    {
        if (options.CheckpointDirectory is string checkpoint) TrainingCheckpoint.EnsureWritable(checkpoint);
        if (tuning.CacheDirectory is string cache) KeyValueCache.EnsureWritable(cache);   // only the method that keeps a cache accepts the option
    }
}
