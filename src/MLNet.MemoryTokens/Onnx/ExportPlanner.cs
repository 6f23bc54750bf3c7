using System.Text.Json;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>Turns a backbone and adapters into an <see cref="ExportPlan"/>: each method's part (which tensors its adapter
/// holds, where its head reads) comes from the method table (<see cref="TuningMethodDefinition.DescribeForward"/>); the parts
/// every export shares (the trunk, heads, labels, metadata) are here.</summary>
internal static class ExportPlanner
{
    /// <summary>The backbone alone: its own head(s) on its pooled output, output <paramref name="output"/>.</summary>
    public static ExportPlan ForBackbone(Backbone backbone, string output)
    {
        var m = backbone.Model;
        if (m.Config.NumClasses == 0)
            throw new InvalidOperationException($"Backbone {backbone.Source} has no classification head (it was loaded without one, or has none): give an adapter to export a trained task.");
        return new ExportPlan
        {
            Config = m.Config, Trunk = m.Parameters, ClassToken = m.Parameters.GetValueOrDefault("cls_token"),
            Heads = [OriginalHead(m, output)], Metadata = Metadata(backbone, []),
        };
    }

    /// <summary>One adapter of any method, its head's output named <paramref name="output"/>. A model-extension adapter brings
    /// the tasks it was trained on (given in <paramref name="extends"/>, else loaded from where it recorded them).</summary>
    public static ExportPlan ForAdapter(Backbone backbone, string output, Adapter adapter, string where, IReadOnlyList<Adapter>? extends = null)
    {
        adapter.EnsureMatches(backbone, where);
        var m = backbone.Model;
        var c = m.Config;
        var earlier = adapter.ResolveExtends(extends, where);
        for (int i = 0; i < earlier.Count; i++) earlier[i].EnsureMatches(backbone, earlier[i].Folder ?? $"{where} (extended adapter {i + 1})");
        var forward = TuningMethods.Get(adapter.Config.Method).DescribeForward(adapter, c, where, earlier);
        var trunk = forward.Trunk ?? m.Parameters;
        var tasks = forward.Tasks.Count > 0 ? [.. forward.Tasks.SkipLast(1), forward.Tasks[^1] with { Name = output }] : forward.Tasks;
        return new ExportPlan
        {
            Config = c, Trunk = trunk, ClassToken = forward.ClassToken ?? trunk.GetValueOrDefault("cls_token"),
            StreamMemory = forward.StreamMemory, TaskRows = tasks, Queries = forward.Queries, QueriesReadMemory = forward.QueriesReadMemory,
            Heads = [Head(adapter, where, output, c, forward) with { Row = forward.Head == HeadInput.TaskRow ? tasks.Count - 1 : 0 }],
            Metadata = Metadata(backbone, [(output, adapter)]),
        };
    }

    /// <summary>The masked multi-task pass: the original head (<paramref name="originalOutput"/>, or none) and each task's head,
    /// outputs named after the tasks. The rules of which adapters combine, and how, are <see cref="MultiTaskVit"/>'s.</summary>
    public static ExportPlan ForMultiTask(Backbone backbone, IReadOnlyList<(string Name, Adapter Adapter)> tasks, MultiTaskMode mode, string? originalOutput)
    {
        if (tasks.Count == 0) throw new ArgumentException("The multi-task pass needs at least one task.");
        foreach (var (name, a) in tasks) a.EnsureMatches(backbone, a.Folder ?? name);
        _ = new MultiTaskVit(backbone, tasks, mode);   // validates methods, masking and extension chains
        var m = backbone.Model;
        var c = m.Config;
        // each task's own row (its last in the chain its method describes), reading itself alone or every task before it
        var rows = tasks.Select((t, k) =>
        {
            var own = TuningMethods.Get(t.Adapter.Config.Method).DescribeForward(t.Adapter, c, t.Adapter.Folder ?? t.Name, []).Tasks[^1];
            return own with { Name = t.Name, Reads = mode == MultiTaskMode.Extension ? Enumerable.Range(0, k + 1).ToArray() : [k] };
        }).ToList();
        var heads = new List<HeadPlan>();
        if (originalOutput is not null)
        {
            if (c.NumClasses == 0) throw new InvalidOperationException($"Backbone {backbone.Source} was loaded without its classification head; load it with the head to export the original output.");
            heads.Add(OriginalHead(m, originalOutput));
        }
        heads.AddRange(tasks.Select((t, k) => Head(t.Adapter, t.Adapter.Folder ?? t.Name, t.Name, c, new AdaptedForward { Head = HeadInput.TaskRow }) with { Row = k }));
        return new ExportPlan
        {
            Config = c, Trunk = m.Parameters, ClassToken = m.Parameters.GetValueOrDefault("cls_token"), TaskRows = rows, Heads = heads,
            Metadata = Metadata(backbone, tasks.Select(t => (t.Name, t.Adapter)).ToList()),
        };
    }

    /// <summary>The backbone's own head on its pooled output (a distilled model's: its two heads averaged).</summary>
    static HeadPlan OriginalHead(VisionTransformer m, string output) =>
        new(output, HeadInput.Pooled, 0, m.Parameters["head.weight"], m.Parameters["head.bias"], null, [])
        {
            DistWeight = m.Parameters.GetValueOrDefault("head_dist.weight"), DistBias = m.Parameters.GetValueOrDefault("head_dist.bias"),
        };

    /// <summary>The adapter's head: weight [C, K], bias [C] on what its method's forward says it reads.</summary>
    static HeadPlan Head(Adapter a, string where, string output, VitConfig c, AdaptedForward forward)
    {
        int classes = a.Config.ClassLabels.Length;
        if (classes < 1) throw new InvalidDataException($"Adapter '{where}' lists no class labels.");
        var w = a.Need("head.weight", where, classes, forward.HeadFeatures(c));
        return new HeadPlan(output, forward.Head, 0, w, a.Need("head.bias", where, classes), forward.KeptFeatures, a.Config.ClassLabels);
    }

    /// <summary>What a consumer needs beside the graph: the input's preprocessing and each output's class labels (JSON).</summary>
    static Dictionary<string, string> Metadata(Backbone backbone, IReadOnlyList<(string Output, Adapter Adapter)> tasks)
    {
        var pre = tasks.Count > 0 ? tasks[0].Adapter.Config.Preprocess with { InputSize = tasks[0].Adapter.Config.ImageSize } : backbone.Preprocess;
        var md = new Dictionary<string, string>
        {
            ["mmt.input"] = $"images: float32 [batch, 3, {pre.InputSize}, {pre.InputSize}], RGB, already normalised: (pixel / 255 - mean) / std",
            ["mmt.preprocess"] = JsonSerializer.Serialize(new { input_size = pre.InputSize, crop_fraction = pre.CropFraction, interpolation = pre.Interpolation.ToString().ToLowerInvariant(), mean = pre.Mean, std = pre.Std }),
            ["mmt.backbone"] = backbone.Source,
            ["mmt.backbone_fingerprint"] = backbone.Fingerprint,
        };
        foreach (var (output, a) in tasks)
        {
            md[$"mmt.labels.{output}"] = JsonSerializer.Serialize(a.Config.ClassLabels);
            md[$"mmt.method.{output}"] = a.Config.Method.ToString();
        }
        return md;
    }
}
