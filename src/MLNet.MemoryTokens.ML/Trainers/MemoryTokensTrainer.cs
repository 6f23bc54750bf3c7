using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Memory-token tuning (Sandler et al. 2022): a few learnable tokens per layer that every token attends to, plus
/// the class token and a new head; the backbone stays frozen. Created by
/// <c>mlContext.MulticlassClassification.Trainers.MemoryTokens(...)</c>.</summary>
public sealed class MemoryTokensTrainer : VitTrainerBase<MemoryTokensTrainer.Options>
{
    /// <summary>Options of <see cref="MemoryTokensTrainer"/>.</summary>
    public sealed class Options : VitClassifierOptionsBase
    {
        /// <summary>Memory tokens per layer (m). Default 5.</summary>
        public int MemoryTokens { get; set; } = 5;

        /// <summary>The attention-masked variant: the backbone's own outputs stay exact, so this task can later join others in
        /// one multi-task pass (<c>mlContext.Transforms.ScoreMemoryTokenTasks</c>). Default false.</summary>
        public bool Masked { get; set; }

        /// <summary>Train the class token with the memory (the paper's default; the masked variant always has its own). Default true.</summary>
        public bool TrainClassToken { get; set; } = true;
    }

    internal MemoryTokensTrainer(IHostEnvironment? env, Options options) : base(env, options, nameof(MemoryTokensTrainer)) { }

    private protected override TuningOptions Tuning => new()
    {
        Method = TuningMethod.Memory, MemoryTokens = TrainerOptions.MemoryTokens, Masked = TrainerOptions.Masked, TrainClassToken = TrainerOptions.TrainClassToken,
    };
}
