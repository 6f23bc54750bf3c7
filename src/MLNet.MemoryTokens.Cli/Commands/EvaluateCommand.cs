using System.CommandLine;
using System.Text.Json;
using MLNet.MemoryTokens.Cli.Plots;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt evaluate</c>: accuracy, macro-F1, log-loss and confusion matrix of an adapter on a labelled set.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var adapter = new Option<string>("--adapter", "-a") { Description = "Adapter folder written by 'mmt train'.", Required = true };
        var data = DataOptions.Data("Labelled images (same forms as 'train').");
        var limit = DataOptions.Limit();
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var plot = new Option<string?>("--plot") { Description = "Also draw the confusion matrix as a heatmap into this file (PNG, and SVG beside it with the same name)." };
        var json = CommonOptions.Json();
        var threads = CommonOptions.Threads();
        var cmd = new Command("evaluate", "Evaluate an adapter on a labelled image set.") { model, adapter, data, limit, batch, plot, json, threads };
        var backend = BackendOptions.AddTo(cmd);
        cmd.SetAction((r, ct) => Task.FromResult(CommonOptions.Run(() =>
        {
            CommonOptions.ApplyThreads(r.GetValue(threads));
            if (r.GetValue(plot) is string plotPath) PlotFiles.EnsureWritable(PlotFiles.StemOf(plotPath));   // before the evaluation: only our own plots are replaced
            var compute = backend.Resolve(r, r.GetValue(threads));
            var dir = r.GetValue(adapter)!;
            var a = CommonOptions.LoadAdapter(r, dir);
            var backbone = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = a.Config.ImageSize, DropHead = true }));
            var tuned = a.CreateModel(backbone, dir, compute: compute);
            using var _ = tuned as IDisposable;
            var ds = DataOptions.Open(r.GetValue(data)!, r.GetValue(limit));
            if (ds.ClassNames.Count != a.Config.ClassLabels.Length)
                throw new ArgumentException($"The data set has {ds.ClassNames.Count} classes, adapter '{dir}' was trained on {a.Config.ClassLabels.Length}.");
            // decoded on background threads while the forward passes run (each batch's images first)
            var prepared = PreparedImages.Stream(ds, a.Config.Preprocess with { InputSize = a.Config.ImageSize }, ct);
            var m = Trainer.Evaluate(tuned, prepared, r.GetValue(batch), ct);
            foreach (var w in prepared.Warnings) Console.Error.WriteLine($"warning: {w}");
            string? heatmap = r.GetValue(plot) is string p
                ? PlotFiles.Save(ConfusionMatrixPlot.Create(m.ConfusionMatrix, a.Config.ClassLabels, $"{a.Config.Method} adapter: accuracy {m.Accuracy:P2} on {m.Count} images"), PlotFiles.StemOf(p)).Png
                : null;
            if (r.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    accuracy = m.Accuracy, macro_f1 = m.MacroF1, log_loss = m.LogLoss, count = m.Count,
                    labels = a.Config.ClassLabels, confusion_matrix = m.ConfusionRows(), confusion_plot = heatmap is null ? null : Path.GetFullPath(heatmap),
                }));
            else
            {
                Console.WriteLine($"images {m.Count}  accuracy {m.Accuracy:P2}  macro-F1 {m.MacroF1:F4}  log-loss {m.LogLoss:F4}");
                Console.WriteLine("confusion matrix (rows: true class, columns: predicted):");
                var labels = a.Config.ClassLabels;
                int w = Math.Max(5, m.ConfusionRows().SelectMany(x => x).Max().ToString().Length + 1);
                Console.WriteLine(new string(' ', 14) + string.Concat(Enumerable.Range(0, labels.Length).Select(i => i.ToString().PadLeft(w))));
                for (int i = 0; i < labels.Length; i++)
                    Console.WriteLine($"{i,2} {Trim(labels[i], 11),-11}" + string.Concat(Enumerable.Range(0, labels.Length).Select(j => m.ConfusionMatrix[i, j].ToString().PadLeft(w))));
                if (heatmap is not null) Console.WriteLine($"confusion matrix plot: {heatmap}");
            }
            return 0;
        })));
        return cmd;
    }

    static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
