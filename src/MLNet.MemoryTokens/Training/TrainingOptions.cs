using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>How to train: schedule, optimizer, regularisation, repeatability, reporting and control.</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 32;
    public float LearningRate { get; init; } = 1e-3f;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>SGD momentum.</summary>
    public float Momentum { get; init; } = 0.9f;
    /// <summary>Decoupled (AdamW) or L2 (SGD) weight decay on weight matrices.</summary>
    public float WeightDecay { get; init; } = 0.0f;
    /// <summary>Linear warm-up length, in epochs (fractions allowed), before the cosine decay.</summary>
    public double WarmupEpochs { get; init; } = 1;
    public float MinLearningRate { get; init; } = 0f;
    /// <summary>Global gradient-norm clip (0: off).</summary>
    public float GradientClipNorm { get; init; } = 1f;
    public float LabelSmoothing { get; init; } = 0.1f;
    /// <summary>Seeds initialisation and shuffling: the same seed, data, options and thread count give the same bits.</summary>
    public int Seed { get; init; } = 0;
    /// <summary>Fraction of the training set held out (stratified) for per-epoch validation when no validation set is given.</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>Stop when the smoothed loss rises above this many times its start (or ln C, whichever is larger): training that
    /// diverges without reaching NaN (see <see cref="DivergenceGuard"/>). 0: only a non-finite loss stops training.</summary>
    public double DivergenceFactor { get; init; } = 3;
    /// <summary>Folder for the resumable training state (written after every epoch); null: none.</summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>Continue from the state in <see cref="CheckpointDirectory"/> when there is one.</summary>
    public bool Resume { get; init; }
    public IProgress<TrainingProgress>? Progress { get; init; }
    public CancellationToken CancellationToken { get; init; }
    /// <summary>Which backend computes the run and on what device (default: the managed engine on the CPU).</summary>
    public ComputeOptions Compute { get; init; } = ComputeOptions.Managed;

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "Train for at least one epoch.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "Batch size must be at least 1.");
        Limits.Check("The batch size", BatchSize, 1, Limits.MaxBatch);
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "Learning rate must be a positive number.");
        if (ValidationFraction < 0 || ValidationFraction >= 1) throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "Validation fraction must be in [0, 1).");
        if (LabelSmoothing < 0 || LabelSmoothing >= 1) throw new ArgumentOutOfRangeException(nameof(LabelSmoothing), LabelSmoothing, "Label smoothing must be in [0, 1).");
        if (WeightDecay < 0 || GradientClipNorm < 0 || WarmupEpochs < 0) throw new ArgumentOutOfRangeException(nameof(WeightDecay), "Weight decay, clip norm and warm-up cannot be negative.");
        if (!(DivergenceFactor >= 0) || double.IsInfinity(DivergenceFactor)) throw new ArgumentOutOfRangeException(nameof(DivergenceFactor), DivergenceFactor, "The divergence factor must be a finite number, 0 or more (0: off).");
        if (Resume && CheckpointDirectory is null) throw new ArgumentException("Resume needs a checkpoint directory.");
        ArgumentNullException.ThrowIfNull(Compute);
        Compute.Validate();
        if (Compute.IsInteger)
            throw new ArgumentException($"{Compute.Precision} is an inference precision (predict, evaluate, featurize, serving); training runs in float32 (or bf16 on the TorchSharp backend).", nameof(Compute));
    }
}

/// <summary>Where training is: reported after every step and every epoch.</summary>
public sealed record TrainingProgress(string Phase, int Epoch, int Epochs, long Step, long TotalSteps, double Loss, double ImagesPerSecond, TimeSpan Eta,
    double? ValidationLoss = null, double? ValidationAccuracy = null, string? Message = null);

/// <summary>One epoch's figures.</summary>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double? ValidationLoss, double? ValidationAccuracy, double Seconds, double ImagesPerSecond);

/// <summary>Training stopped because the loss or a gradient was not finite.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
