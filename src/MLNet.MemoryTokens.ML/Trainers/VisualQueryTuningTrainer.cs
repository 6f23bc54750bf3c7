using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Visual Query Tuning (Tu et al. 2023) as a classifier: per-layer query tokens that only read the frozen
/// backbone, trained together with a head on their summaries (with <see cref="Options.MemoryTokens"/> &gt; 0, the queries read
/// a memory-adapted stream and its memory instead, all trained together). Created by
/// <c>mlContext.MulticlassClassification.Trainers.VisualQueryTuning(...)</c>; to feed another ML.NET trainer instead, use
/// <c>mlContext.Transforms.VqtFeaturizer(...)</c>.</summary>
public sealed class VisualQueryTuningTrainer : VitTrainerBase<VisualQueryTuningTrainer.Options>
{
    /// <summary>Options of <see cref="VisualQueryTuningTrainer"/>.</summary>
    public sealed class Options : VitClassifierOptionsBase
    {
        /// <summary>Query tokens per layer (T). Default 1.</summary>
        public int QueryTokens { get; set; } = 1;

        /// <summary>Dropout on the query tokens while training (plain VQT). Default 0.1.</summary>
        public float QueryDropout { get; set; } = 0.1f;

        /// <summary>Memory tokens per layer for the queries to read (the engine's VqtMemory); 0: plain VQT on the frozen stream. Default 0.</summary>
        public int MemoryTokens { get; set; }

        /// <summary>With <see cref="MemoryTokens"/> &gt; 0: the queries read each layer's memory as well as the original
        /// tokens, as VQT's code composes with prompts; false: the original tokens only. Recorded in the adapter. Default true.</summary>
        public bool QueriesReadMemory { get; set; } = true;

        /// <summary>Group-lasso weight λ on the head's feature columns while training (plain VQT; 0: off). Default 0.</summary>
        public float GroupLasso { get; set; }

        /// <summary>Keep this fraction of features (the largest head columns) and retrain the head on them (plain VQT; 1: all). Default 1.</summary>
        public double KeepFeatureFraction { get; set; } = 1;

        /// <summary>Element type of the key/value cache the engine trains from. Default F16.</summary>
        public TensorDType CacheDType { get; set; } = TensorDType.F16;

        /// <summary>Folder for a file-backed cache, reused across runs on the same data; null: memory within 4 GB, else the temp folder. Default null.</summary>
        public string? CacheDirectory { get; set; }
    }

    internal VisualQueryTuningTrainer(IHostEnvironment? env, Options options) : base(env, options, nameof(VisualQueryTuningTrainer)) { }

    private protected override TuningOptions Tuning => new()
    {
        Method = TrainerOptions.MemoryTokens > 0 ? TuningMethod.VqtMemory : TuningMethod.Vqt, MemoryTokens = TrainerOptions.MemoryTokens,
        QueriesReadMemory = TrainerOptions.QueriesReadMemory, QueryTokens = TrainerOptions.QueryTokens, QueryDropout = TrainerOptions.QueryDropout, GroupLasso = TrainerOptions.GroupLasso,
        KeepFeatureFraction = TrainerOptions.KeepFeatureFraction, CacheDType = TrainerOptions.CacheDType, CacheDirectory = TrainerOptions.CacheDirectory,
    };
}
