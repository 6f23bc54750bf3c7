using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Settings every fitted component of this package shares: the columns it reads, the backbone, the training
/// schedule (the engine's <see cref="TrainingOptions"/>, same defaults) and run control.</summary>
public abstract class VitTuningOptionsBase
{
    static readonly TrainingOptions Engine = new();

    /// <summary>The label column: a <c>Key&lt;UInt32&gt;</c> (e.g. from <c>MapValueToKey</c>); key order is class order.
    /// Default <c>"Label"</c>.</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>The image column: an <c>MLImage</c> (LoadImages, any size: we resize it like the engine does), text (an
    /// image path, decoded by the engine's JPEG/PNG/BMP/PPM decoder), or a known-size <c>Vector&lt;Single&gt;</c> /
    /// <c>Vector&lt;Byte&gt;</c> of 3·S·S planar RGB values in 0–255 — <c>ExtractPixels</c>' default output at the backbone's
    /// input size S (do not scale or offset; the backbone's per-channel mean/std is applied here). Default <c>"Image"</c>.</summary>
    public string ImageColumnName { get; set; } = "Image";

    /// <summary>Folder relative image paths are resolved against (text image columns only). Default null: as given.</summary>
    public string? ImageFolder { get; set; }

    /// <summary>An already loaded backbone, shared as is (takes precedence over <see cref="BackbonePath"/>). Default null.</summary>
    public Backbone? Backbone { get; set; }

    /// <summary>A checkpoint path (.safetensors, big_vision .npz) or timm model id, loaded once through
    /// <see cref="BackboneCache"/> and shared. Default <see cref="BackboneCache.DefaultModel"/> (ViT-Ti/16, downloaded on first use).</summary>
    public string? BackbonePath { get; set; } = BackboneCache.DefaultModel;

    /// <summary>Input size S the backbone runs at (its position embedding is resampled); null: the checkpoint's own. Default null.</summary>
    public int? ImageSize { get; set; }

    /// <summary>Passes over the training data. Default 10.</summary>
    public int Epochs { get; set; } = Engine.Epochs;

    /// <summary>Images per optimizer step. Default 32.</summary>
    public int BatchSize { get; set; } = Engine.BatchSize;

    /// <summary>Peak learning rate (after warm-up, before the cosine decay). Default 1e-3.</summary>
    public float LearningRate { get; set; } = Engine.LearningRate;

    /// <summary>AdamW or SGD. Default AdamW.</summary>
    public OptimizerKind Optimizer { get; set; } = Engine.Optimizer;

    /// <summary>SGD momentum. Default 0.9.</summary>
    public float Momentum { get; set; } = Engine.Momentum;

    /// <summary>Decoupled (AdamW) or L2 (SGD) weight decay on weight matrices. Default 0.</summary>
    public float WeightDecay { get; set; } = Engine.WeightDecay;

    /// <summary>Linear warm-up length in epochs (fractions allowed). Default 1.</summary>
    public double WarmupEpochs { get; set; } = Engine.WarmupEpochs;

    /// <summary>Learning rate at the end of the cosine decay. Default 0.</summary>
    public float MinLearningRate { get; set; } = Engine.MinLearningRate;

    /// <summary>Global gradient-norm clip (0: off). Default 1.</summary>
    public float GradientClipNorm { get; set; } = Engine.GradientClipNorm;

    /// <summary>Label smoothing of the cross-entropy. Default 0.1.</summary>
    public float LabelSmoothing { get; set; } = Engine.LabelSmoothing;

    /// <summary>Seeds initialisation, shuffling and the validation split. Default null: drawn from the MLContext's random
    /// source, so <c>new MLContext(seed: n)</c> makes runs repeatable.</summary>
    public int? Seed { get; set; }

    /// <summary>Fraction of the training rows held out (stratified) for per-epoch validation when <c>Fit</c> gets no
    /// validation data; 0 turns validation off. Default 0.1.</summary>
    public double ValidationFraction { get; set; } = Engine.ValidationFraction;

    /// <summary>Rows per forward pass when the fitted transformer scores a data view. Default 32.</summary>
    public int InferenceBatchSize { get; set; } = 32;

    /// <summary>Folder for a resumable training state, written after every epoch. Default null: none.</summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Continue from the state in <see cref="CheckpointDirectory"/> when there is one. Default false.</summary>
    public bool Resume { get; set; }

    /// <summary>The compute backend that trains (and then scores) the model: <c>"managed"</c> (this library's kernels on the CPU)
    /// or <c>"torchsharp"</c> (LibTorch on the CPU or an NVIDIA GPU; reference MLNet.MemoryTokens.TorchSharp with TorchSharp-cpu
    /// or TorchSharp-cuda-linux and call <c>TorchSharpBackend.Register()</c> once at start-up). The adapter is the same either
    /// way: one trained on a GPU loads and serves on the managed backend. Default <c>"managed"</c>.</summary>
    public string Backend { get; set; } = TuningMethods.ManagedBackend;

    /// <summary>Where the backend computes: <c>"cpu"</c>, <c>"cuda"</c>, <c>"cuda:N"</c> or <c>"auto"</c> (a GPU when the backend
    /// has one, else the CPU). Default <c>"auto"</c>.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Float32, or bf16 autocast (TorchSharp on CUDA). Default Float32.</summary>
    public ComputePrecision Precision { get; set; } = ComputePrecision.Float32;

    /// <summary>Receives the engine's progress after every step and epoch (besides the MLContext log). Default null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Stops training (an <see cref="OperationCanceledException"/> from <c>Fit</c>) before the next batch. Training
    /// also stops when the MLContext is cancelled, which is how AutoML ends a trial over its time budget.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>A shallow copy (AutoML search spaces apply their values to a copy).</summary>
    public VitTuningOptionsBase Clone() => (VitTuningOptionsBase)MemberwiseClone();

    internal TrainingOptions ToTrainingOptions(int seed, IProgress<TrainingProgress>? progress, CancellationToken cancel) => new()
    {
        Epochs = Epochs, BatchSize = BatchSize, LearningRate = LearningRate, Optimizer = Optimizer, Momentum = Momentum,
        WeightDecay = WeightDecay, WarmupEpochs = WarmupEpochs, MinLearningRate = MinLearningRate, GradientClipNorm = GradientClipNorm,
        LabelSmoothing = LabelSmoothing, Seed = seed, ValidationFraction = ValidationFraction,
        CheckpointDirectory = CheckpointDirectory, Resume = Resume, Progress = progress, CancellationToken = cancel,
        Compute = new ComputeOptions { Backend = Backend, Device = Device, Precision = Precision },
    };

    /// <summary>The input size when it is known without loading anything (for estimator-time messages), else 0.</summary>
    internal int KnownImageSize => ImageSize ?? Backbone?.Model.Config.ImageSize ?? 0;
}

/// <summary>Settings of the classifiers (trainers under <c>MulticlassClassification.Trainers</c>): the tuning settings plus
/// their output columns, which follow ML.NET's multiclass trainers.</summary>
public abstract class VitClassifierOptionsBase : VitTuningOptionsBase
{
    /// <summary>Output: class probabilities (softmax), a <c>Vector&lt;Single&gt;</c> in the label's key order, with slot
    /// names when the label has key values. Default <c>"Score"</c>.</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Output: the most likely class, of the label's own key type (with its key values, so
    /// <c>MapKeyToValue</c> works). Default <c>"PredictedLabel"</c>.</summary>
    public string PredictedLabelColumnName { get; set; } = "PredictedLabel";
}
