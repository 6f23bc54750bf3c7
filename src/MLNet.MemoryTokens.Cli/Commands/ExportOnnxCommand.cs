using System.CommandLine;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Onnx;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt export-onnx</c>: the backbone, an adapted model, or the masked multi-task pass as an ONNX file.</summary>
internal static class ExportOnnxCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var adapter = new Option<string?>("--adapter", "-a") { Description = "Adapter folder from 'mmt train' (any method): export that task; its output is named after the folder (or --name)." };
        var adapters = new Option<string?>("--adapters") { Description = "Comma-separated attention-masked adapter folders ('name=folder' to name an output): the original head and every task in one pass." };
        var name = new Option<string?>("--name") { Description = "Output name for --adapter (default: the adapter folder's name)." };
        var output = new Option<string>("--out", "-o") { Description = "The .onnx file to write.", Required = true };
        var quantize = new Option<bool>("--quantize-dynamic") { Description = "Write the blocks' Linear layers in ONNX Runtime's dynamic-quantisation form (int8 weights per tensor, uint8 activations at run time), as onnxruntime.quantization.quantize_dynamic does by default." };
        var opset = new Option<int>("--opset") { Description = $"ONNX opset ({OnnxExport.MinOpset} to {OnnxExport.MaxOpset}).", DefaultValueFactory = _ => OnnxExport.DefaultOpset };
        var imageSize = new Option<int?>("--image-size") { Description = "Input size for the backbone alone (an adapter fixes its own)." };
        var noOriginal = new Option<bool>("--no-original") { Description = "With --adapters: leave the backbone's own head out." };
        var features = new Option<bool>("--features") { Description = "With a VQT --adapter: output the features its head reads instead of logits." };
        var force = new Option<bool>("--force") { Description = "Replace an existing file at --out that mmt did not write." };
        var cmd = new Command("export-onnx", "Write an ONNX model (input 'images' [batch, 3, S, S], already normalised; one logits output per task) for ONNX Runtime.")
            { model, adapter, adapters, name, output, opset, imageSize, noOriginal, features, force, quantize };
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            string? one = r.GetValue(adapter), many = r.GetValue(adapters);
            if (one is not null && many is not null) throw new ArgumentException("Give --adapter (one task) or --adapters (the multi-task pass), not both.");
            if (r.GetValue(name) is not null && one is null) throw new ArgumentException("--name names the output of --adapter.");
            if (r.GetValue(noOriginal) && many is null) throw new ArgumentException("--no-original applies to --adapters.");
            var options = new OnnxExportOptions
            {
                Opset = r.GetValue(opset), Features = r.GetValue(features), Overwrite = r.GetValue(force), QuantizeDynamic = r.GetValue(quantize),
                MultiTask = many is not null, OriginalHead = r.GetValue(noOriginal) ? false : null,
            };
            if (options.Opset is < OnnxExport.MinOpset or > OnnxExport.MaxOpset)   // before loading anything
                throw new ArgumentException($"--opset {options.Opset} is not supported: use {OnnxExport.MinOpset} to {OnnxExport.MaxOpset}.");
            var tasks = new List<(string Name, Adapter Adapter)>();
            if (one is not null) tasks.Add((r.GetValue(name) ?? OnnxExport.TaskNameFor(one), CommonOptions.LoadAdapter(r, one)));
            foreach (var entry in (many ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                int eq = entry.IndexOf('=');
                string folder = eq >= 0 ? entry[(eq + 1)..] : entry;
                tasks.Add((eq >= 0 ? entry[..eq] : OnnxExport.TaskNameFor(folder), CommonOptions.LoadAdapter(r, folder)));
            }
            if (many is not null && tasks.Count == 0) throw new ArgumentException("--adapters lists no adapter folder.");
            int? size = tasks.Count > 0 ? tasks[0].Adapter.Config.ImageSize : r.GetValue(imageSize);
            if (tasks.Count > 0 && r.GetValue(imageSize) is int s && s != size)
                throw new ArgumentException($"--image-size {s} differs from the adapter's input size {size}; an adapter runs at the size it was trained at.");
            // the original head is read only by the backbone alone and the multi-task pass
            var backbone = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = size, DropHead = one is not null }));
            if (tasks.Count > 0) backbone = new Backbone(backbone.Model, tasks[0].Adapter.Config.Preprocess with { InputSize = size!.Value }, backbone.Source, backbone.Fingerprint);
            var summary = OnnxExport.Save(r.GetValue(output)!, backbone, tasks, options);
            Console.WriteLine($"wrote {summary.Path} ({summary.Bytes / 1e6:F1} MB, opset {summary.Opset})");
            int s0 = backbone.Model.Config.ImageSize;
            Console.WriteLine($"input  {OnnxExport.InputName} float32 [batch, 3, {s0}, {s0}] (normalised: mean {string.Join("/", backbone.Preprocess.Mean)}, std {string.Join("/", backbone.Preprocess.Std)})");
            foreach (var o in summary.Outputs) Console.WriteLine($"output {o.Name} float32 [batch, {o.Width}]");
            return 0;
        }));
        return cmd;
    }
}
