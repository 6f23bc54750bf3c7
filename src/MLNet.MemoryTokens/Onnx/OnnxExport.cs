using System.Text.RegularExpressions;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>How <see cref="OnnxExport.Save"/> writes a model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>ONNX opset, <see cref="OnnxExport.MinOpset"/> (LayerNormalization) to <see cref="OnnxExport.MaxOpset"/>.</summary>
    public int Opset { get; init; } = OnnxExport.DefaultOpset;
    /// <summary>Export the tasks as the attention-masked multi-task pass (implied by more than one task): the original head and
    /// every task in one graph.</summary>
    public bool MultiTask { get; init; }
    /// <summary>Multi-task pass: output the backbone's own head as <see cref="OnnxExport.OriginalOutput"/> — null: when the
    /// backbone has a head; true: required; false: not.</summary>
    public bool? OriginalHead { get; init; }
    /// <summary>Multi-task pass: how tasks see each other (null: extension when any task was trained on top of others).</summary>
    public MultiTaskMode? Mode { get; init; }
    /// <summary>A VQT adapter: output the feature vector its head reads (the ML.NET featurizer's column) instead of logits.</summary>
    public bool Features { get; init; }
    /// <summary>Replace an existing file that this library did not write (a model it wrote is always replaced).</summary>
    public bool Overwrite { get; init; }
    /// <summary>The blocks' Linear layers in ONNX Runtime's dynamic-quantisation form, as <c>onnxruntime.quantization.quantize_dynamic</c>
    /// writes it with its defaults: weights int8, symmetric, one scale per tensor; activations uint8, quantised at run time per
    /// tensor (DynamicQuantizeLinear → MatMulInteger → Cast → Mul by the scales → Add bias; ONNX Runtime fuses the chain).
    /// Patch embedding, attention, norms and heads stay float32.</summary>
    public bool QuantizeDynamic { get; init; }
}

/// <summary>What <see cref="OnnxExport.Save"/> wrote.</summary>
public sealed record OnnxExportSummary(string Path, int Opset, long Bytes, IReadOnlyList<OnnxOutput> Outputs);

/// <summary>One output of an exported model: its name and width ([batch, Width] float32 logits, or features).</summary>
public sealed record OnnxOutput(string Name, int Width, IReadOnlyList<string> Labels);

/// <summary>Exports a backbone, an adapted model or the masked multi-task pass to an ONNX file that ONNX Runtime (or any
/// ONNX runtime) runs without this library: input <see cref="InputName"/> [batch, 3, S, S] float32, already normalised;
/// one float32 output per head, named after its task; dynamic batch.</summary>
public static class OnnxExport
{
    public const int MinOpset = 17, MaxOpset = 23, DefaultOpset = 17;
    public const string InputName = "images";
    /// <summary>The backbone's own head when exported alone.</summary>
    public const string BackboneOutput = "logits";
    /// <summary>The backbone's own head in the multi-task pass.</summary>
    public const string OriginalOutput = "original";
    /// <summary>Largest model a protobuf file can hold (2 GiB); larger ones would need external data.</summary>
    const long MaxBytes = int.MaxValue;

    static readonly Regex TaskName = new("^[A-Za-z0-9_][A-Za-z0-9_.-]*$", RegexOptions.CultureInvariant);

    /// <summary>Writes the ONNX model: the backbone alone (no tasks: its head, output <see cref="BackboneOutput"/>), one adapter
    /// of any method (output named after it; a model-extension adapter brings the adapters it extends, loaded from where it
    /// recorded them), or attention-masked adapters in one pass (<see cref="OnnxExportOptions.MultiTask"/> or several tasks:
    /// <see cref="OriginalOutput"/> and one output per task). Each adapter must match <paramref name="backbone"/>. The file is
    /// written to a temp file and renamed, so it is never left half-written.</summary>
    public static OnnxExportSummary Save(string path, Backbone backbone, IReadOnlyList<(string Name, Adapter Adapter)>? tasks = null, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(backbone);
        options ??= new OnnxExportOptions();
        tasks ??= [];
        if (options.Opset is < MinOpset or > MaxOpset)
            throw new ArgumentException($"ONNX opset {options.Opset} is not supported: use {MinOpset} to {MaxOpset} (LayerNormalization needs {MinOpset}).");
        var plan = Plan(backbone, tasks, options) with { QuantizeLinears = options.QuantizeDynamic };
        var model = VitOnnxGraph.Build(plan, options.Opset);
        if (model.Size > MaxBytes)
            throw new NotSupportedException($"The model is {model.Size / (1 << 20)} MiB; one ONNX protobuf file holds at most 2 GiB (external weight files are not supported).");
        string target = Path.GetFullPath(path);
        if (Directory.Exists(target)) throw new IOException($"'{target}' is a folder; give the path of the .onnx file to write.");
        if (File.Exists(target) && !options.Overwrite && !OnnxProto.IsOurs(target))
            throw new IOException($"'{target}' exists and is not an ONNX model written by {OnnxProto.Producer}; refusing to replace it (choose another path, or allow overwriting).");
        var dir = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"The folder of '{target}' does not exist.");
        AtomicFile.Write(target, model.WriteTo);
        int queries = plan.Queries?.Shape[1] ?? 0;
        return new OnnxExportSummary(target, options.Opset, model.Size, plan.Heads.Select(h => new OnnxOutput(h.Output, h.Width(plan.Config, queries), h.Labels)).ToArray());
    }

    static ExportPlan Plan(Backbone backbone, IReadOnlyList<(string Name, Adapter Adapter)> tasks, OnnxExportOptions o)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in tasks)
        {
            if (string.IsNullOrEmpty(name) || !TaskName.IsMatch(name))
                throw new ArgumentException($"Task name '{name}' cannot name an ONNX output: use letters, digits, '_', '.' and '-' (not first).");
            if (name == InputName || !names.Add(name)) throw new ArgumentException($"Task name '{name}' is used twice (or is the input's name).");
        }
        if (tasks.Count == 0)
        {
            if (o.Features) throw new ArgumentException("Features are a VQT adapter's output; give the adapter.");
            return ExportPlanner.ForBackbone(backbone, BackboneOutput);
        }
        if (tasks.Count == 1 && !o.MultiTask)
        {
            var (name, adapter) = tasks[0];
            var plan = ExportPlanner.ForAdapter(backbone, name, adapter, adapter.Folder ?? name);
            if (!o.Features) return plan;
            if (plan.Heads[0].From != HeadInput.QueryFeatures) throw new ArgumentException($"Adapter '{adapter.Folder ?? name}' is a {adapter.Config.Method} adapter; only VQT adapters export features.");
            return plan with { Heads = [plan.Heads[0] with { Weight = null, Bias = null, Labels = [] }] };
        }
        if (o.Features) throw new ArgumentException("Features are a single VQT adapter's output, not the multi-task pass's.");
        bool hasHead = backbone.Model.Config.NumClasses > 0;
        if (o.OriginalHead == true && !hasHead)
            throw new InvalidOperationException($"Backbone {backbone.Source} was loaded without its classification head; load it with the head to export the original output.");
        if (names.Contains(OriginalOutput) && o.OriginalHead != false && hasHead)
            throw new ArgumentException($"Task name '{OriginalOutput}' is the original head's output; rename the task.");
        var mode = o.Mode ?? (tasks.Any(t => t.Adapter.Config.Extends.Length > 0) ? MultiTaskMode.Extension : MultiTaskMode.Concatenation);
        return ExportPlanner.ForMultiTask(backbone, tasks, mode, (o.OriginalHead ?? hasHead) ? OriginalOutput : null);
    }

    /// <summary>A task name from an adapter folder's name: its characters outside letters, digits, '_', '.', '-' become '_'.</summary>
    public static string TaskNameFor(string folder)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        name = Regex.Replace(name, "[^A-Za-z0-9_.-]", "_");
        return name.Length == 0 || !TaskName.IsMatch(name) ? "task_" + name : name;
    }
}
