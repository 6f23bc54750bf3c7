using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>One task of the multi-task pass: a name and a memory-token adapter trained with <c>Masked = true</c> on the
/// same backbone (a fitted <see cref="VitClassifierTransformer"/>, or an adapter folder loaded with <see cref="Adapter.Load"/>).</summary>
public sealed class MemoryTokenTask
{
    /// <summary>A task from an adapter; its scores go to <paramref name="outputColumnName"/> (default <c>"&lt;name&gt;.Score"</c>).</summary>
    public MemoryTokenTask(string name, Adapter adapter, string? outputColumnName = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(adapter);
        Name = name;
        Adapter = adapter;
        OutputColumnName = outputColumnName ?? $"{name}.Score";
    }

    /// <summary>A task from a fitted classifier (its adapter, and the backbone it was trained on).</summary>
    public MemoryTokenTask(string name, VitClassifierTransformer classifier, string? outputColumnName = null)
        : this(name, classifier?.Adapter ?? throw new ArgumentNullException(nameof(classifier)), outputColumnName)
    {
        Backbone = classifier.Backbone;
    }

    public string Name { get; }
    public Adapter Adapter { get; }
    public string OutputColumnName { get; }
    /// <summary>The backbone the task came with (null for a bare adapter).</summary>
    public Backbone? Backbone { get; }
}
