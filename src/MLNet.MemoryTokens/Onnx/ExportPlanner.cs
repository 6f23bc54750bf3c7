using System.Text.Json;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>Turns a backbone and adapters into an <see cref="ExportPlan"/>: the one place that knows which tensors each
/// method's adapter holds and where each method's head reads.</summary>
internal static class ExportPlanner
{
    /// <summary>The backbone alone: its own head on the final-norm class token, output <paramref name="output"/>.</summary>
    public static ExportPlan ForBackbone(Backbone backbone, string output)
    {
        var m = backbone.Model;
        if (m.Config.NumClasses == 0)
            throw new InvalidOperationException($"Backbone {backbone.Source} has no classification head (it was loaded without one, or has none): give an adapter to export a trained task.");
        return new ExportPlan
        {
            Config = m.Config, Trunk = m.Parameters, ClassToken = m.Parameters["cls_token"],
            Heads = [OriginalHead(m, output)], Metadata = Metadata(backbone, []),
        };
    }

    /// <summary>One adapter of any method, its head's output named <paramref name="output"/>. A model-extension adapter brings
    /// the tasks it was trained on (given in <paramref name="extends"/>, else loaded from where it recorded them).</summary>
    public static ExportPlan ForAdapter(Backbone backbone, string output, Adapter adapter, string where, IReadOnlyList<Adapter>? extends = null)
    {
        adapter.EnsureMatches(backbone, where);
        var cfg = adapter.Config;
        var m = backbone.Model;
        var c = m.Config;
        Tensor Need(string name, params int[] shape) => Tensor(adapter, where, name, shape);
        var head = Head(adapter, where, output, c, cfg.Method is TuningMethod.Vqt or TuningMethod.VqtMemory ? cfg.QueryTokens : 0);
        var plan = new ExportPlan
        {
            Config = c, Trunk = m.Parameters, ClassToken = m.Parameters["cls_token"], Heads = [head],
            Metadata = Metadata(backbone, [(output, adapter)]),
        };
        switch (cfg.Method)
        {
            case TuningMethod.HeadOnly:
                return plan;
            case TuningMethod.HeadAndClassToken:
                return plan with { ClassToken = Need("cls_token", 1, 1, c.Dim) };
            case TuningMethod.Full:
            {
                // every trunk weight is the adapter's (backbone.<timm name>)
                var trunk = new Dictionary<string, Tensor>();
                foreach (var (name, t) in m.Parameters)
                    if (!name.StartsWith("head.", StringComparison.Ordinal)) trunk[name] = Need("backbone." + name, t.Shape);
                return plan with { Trunk = trunk, ClassToken = trunk["cls_token"] };
            }
            case TuningMethod.Memory when !cfg.Masked:
                return plan with { ClassToken = ClassTokenOf(adapter, where, plan.ClassToken), StreamMemory = Need("memory", c.Depth, cfg.MemoryTokens, c.Dim) };
            case TuningMethod.Memory:
            {
                // masked: the tasks it extends first (each reading the ones before it), then this one, reading them all
                var earlier = adapter.ResolveExtends(extends, where);
                for (int i = 0; i < earlier.Count; i++) earlier[i].EnsureMatches(backbone, earlier[i].Folder ?? $"{where} (extended adapter {i + 1})");
                var chain = earlier.Append(adapter).Select((a, i) => TaskRowOf(a, a == adapter ? where : a.Folder ?? $"extended adapter {i + 1}", $"extends{i}", c, Enumerable.Range(0, i + 1).ToArray())).ToList();
                chain[^1] = chain[^1] with { Name = output };
                return plan with { TaskRows = chain, Heads = [head with { From = Readout.TaskRow, Row = chain.Count - 1 }] };
            }
            case TuningMethod.Vqt:
                return plan with { Queries = Need("queries", c.Depth, cfg.QueryTokens, c.Dim) };
            case TuningMethod.VqtMemory:
                return plan with
                {
                    ClassToken = ClassTokenOf(adapter, where, plan.ClassToken), StreamMemory = Need("memory", c.Depth, cfg.MemoryTokens, c.Dim),
                    Queries = Need("queries", c.Depth, cfg.QueryTokens, c.Dim),
                };
            default:
                throw new NotSupportedException($"Adapter '{where}': ONNX export does not know method {cfg.Method}.");
        }
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
        var rows = tasks.Select((t, k) => TaskRowOf(t.Adapter, t.Adapter.Folder ?? t.Name, t.Name, c,
            mode == MultiTaskMode.Extension ? Enumerable.Range(0, k + 1).ToArray() : [k])).ToList();
        var heads = new List<HeadPlan>();
        if (originalOutput is not null)
        {
            if (c.NumClasses == 0) throw new InvalidOperationException($"Backbone {backbone.Source} was loaded without its classification head; load it with the head to export the original output.");
            heads.Add(OriginalHead(m, originalOutput));
        }
        heads.AddRange(tasks.Select((t, k) => Head(t.Adapter, t.Adapter.Folder ?? t.Name, t.Name, c, 0) with { From = Readout.TaskRow, Row = k }));
        return new ExportPlan
        {
            Config = c, Trunk = m.Parameters, ClassToken = m.Parameters["cls_token"], TaskRows = rows, Heads = heads,
            Metadata = Metadata(backbone, tasks.Select(t => (t.Name, t.Adapter)).ToList()),
        };
    }

    static HeadPlan OriginalHead(VisionTransformer m, string output) =>
        new(output, Readout.ClassToken, 0, m.Parameters["head.weight"], m.Parameters["head.bias"], null, []);

    /// <summary>The adapter's head: weight [C, K], bias [C]; a VQT head reads D·(1 + L·T) features, or the kept ones.</summary>
    static HeadPlan Head(Adapter a, string where, string output, VitConfig c, int queryTokens)
    {
        int classes = a.Config.ClassLabels.Length;
        if (classes < 1) throw new InvalidDataException($"Adapter '{where}' lists no class labels.");
        int features = c.Dim * (1 + c.Depth * queryTokens);
        int[]? kept = null;
        if (queryTokens > 0 && a.Tensors.TryGetValue("kept_features", out var k))
        {
            kept = k.Data.Select(v => (int)v).ToArray();
            if (kept.Length == 0 || kept.Any(j => (uint)j >= (uint)features) || kept.Zip(kept.Skip(1)).Any(p => p.First >= p.Second))
                throw new InvalidDataException($"Adapter '{where}': kept_features must be ascending indices within [0, {features}).");
        }
        var w = Tensor(a, where, "head.weight", classes, kept?.Length ?? features);
        return new HeadPlan(output, queryTokens > 0 ? Readout.QueryFeatures : Readout.ClassToken, 0, w, Tensor(a, where, "head.bias", classes), kept, a.Config.ClassLabels);
    }

    static TaskRow TaskRowOf(Adapter a, string where, string name, VitConfig c, int[] reads) =>
        new(name, Tensor(a, where, "cls_token", 1, 1, c.Dim), Tensor(a, where, "memory", c.Depth, a.Config.MemoryTokens, c.Dim), reads);

    static Tensor ClassTokenOf(Adapter a, string where, Tensor backboneClassToken) =>
        a.Tensors.ContainsKey("cls_token") ? Tensor(a, where, "cls_token", backboneClassToken.Shape) : backboneClassToken;

    static Tensor Tensor(Adapter a, string where, string name, params int[] shape)
    {
        if (!a.Tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"Adapter '{where}' has no tensor '{name}' that method {a.Config.Method} needs.");
        if (!t.ShapeEquals(shape)) throw new InvalidDataException($"Adapter '{where}': tensor '{name}' has shape {t.ShapeString}, expected {MLNet.MemoryTokens.Tensor.FormatShape(shape)}.");
        return t;
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
