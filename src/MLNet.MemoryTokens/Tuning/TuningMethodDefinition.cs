using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>One tuning method's entry in the method table (<see cref="TuningMethods"/>): its name, the options it reads and
/// owns, what its adapter records, and how each compute backend runs it. Each method defines one (in its own folder) and
/// nothing else asks which method it is.</summary>
public abstract class TuningMethodDefinition
{
    /// <summary>The key users set (<see cref="TuningOptions.Method"/>) and adapters record.</summary>
    public abstract TuningMethod Method { get; }

    /// <summary>The method's name on the command line (<c>mmt train --method</c>).</summary>
    public abstract string Name { get; }

    /// <summary>What it trains, in a few words.</summary>
    public abstract string Summary { get; }

    /// <summary>True when training rewrites the backbone's own weights (full fine-tuning): the model trains a copy, and hosts
    /// that share backbones between components give it one of its own.</summary>
    public virtual bool TrainsBackbone => false;

    /// <summary>Options only this method reads, each with the message given when another method is asked to use it.</summary>
    public virtual IEnumerable<OwnedOption> OwnedOptions => [];

    /// <summary>Checks the options this method reads (<see cref="TuningOptions.Validate()"/> has checked the shared ranges).</summary>
    public virtual void Validate(TuningOptions options) { }

    /// <summary>Checks the options against the backbone a run uses.</summary>
    public virtual void Validate(TuningOptions options, Backbone backbone) { }

    /// <summary>This method's fields of <c>adapter_config.json</c> (sizes, flags, what it extends), on top of the shared ones.</summary>
    public virtual AdapterConfig DescribeAdapter(AdapterConfig config, TuningOptions options) => config;

    /// <summary>The options an adapter of this method was trained with, read back from its config (<paramref name="extends"/>:
    /// the adapters it extends, resolved and checked): what rebuilds its model. The reverse of <see cref="DescribeAdapter"/>.</summary>
    public virtual TuningOptions ReadAdapter(AdapterConfig config, IReadOnlyList<Adapter> extends) => new() { Method = Method };

    /// <summary>How an adapter of this method changes the backbone's forward, from its tensors (checked by name and shape
    /// against <paramref name="backbone"/>): what the ONNX export builds its graph from. <paramref name="extends"/>: the
    /// adapters a model-extension adapter was trained on, resolved and checked.</summary>
    /// <exception cref="InvalidDataException">A tensor the method needs is missing or has the wrong shape.</exception>
    public virtual AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends) =>
        throw new NotSupportedException($"Adapter '{where}': method {Name} cannot describe its forward for export.");

    /// <summary>How the managed engine runs this method: its model and its training step.</summary>
    public abstract IMethodCompute Managed { get; }
}

/// <summary>An option one method owns: set when <see cref="IsSet"/> says so, and refused for any other method with <see cref="Refusal"/>.</summary>
public sealed record OwnedOption(Func<TuningOptions, bool> IsSet, Func<TuningOptions, string> Refusal);

/// <summary>How one method computes on one backend: its model (forward and backward) and its training step, and what its
/// adapter keeps beyond the trainable parameters. The managed engine's comes with each method; another backend (a GPU one)
/// registers its own with <see cref="TuningMethods.RegisterCompute(TuningMethod, string, Func{ComputeOptions, IMethodCompute})"/>. Models of every backend name their parameters the same,
/// so an adapter trained on one serves on another.</summary>
public interface IMethodCompute
{
    /// <summary>The backbone with this method's trainable parts, freshly initialised (seeded) for <paramref name="classes"/> classes.</summary>
    ITunedModel CreateModel(VisionTransformer backbone, TuningOptions options, int classes, int seed);

    /// <summary>The step the trainer runs each batch (default: the model's own forward and backward on the images).</summary>
    ITrainingStep CreateTrainingStep(ITunedModel model, StepContext context) => new ImageStep(model, context.Images);

    /// <summary>Tensors an adapter keeps besides the parameters (e.g. which features a compressed head reads).</summary>
    IEnumerable<KeyValuePair<string, Tensor>> AdapterExtras(ITunedModel model) => [];

    /// <summary>Readies a freshly created model for an adapter's tensors, before they are copied in (e.g. reshapes a compressed head).</summary>
    void PrepareForAdapter(ITunedModel model, IReadOnlyDictionary<string, Tensor> tensors) { }
}
