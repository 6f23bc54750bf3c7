using System.CommandLine;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt featurize</c>: the VQT feature vector of every image of a data set, written to a safetensors file.</summary>
internal static class FeaturizeCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var adapter = new Option<string>("--adapter", "-a") { Description = "VQT adapter folder from 'mmt train --method vqt'.", Required = true };
        var data = DataOptions.Data("Images to featurize (same forms as 'train'; labels are written too).");
        var limit = DataOptions.Limit();
        var output = new Option<string>("--out", "-o") { Description = "Output .safetensors: features [N, D·(1+L·T)] and labels [N].", Required = true };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32 };
        var threads = CommonOptions.Threads();
        var cmd = new Command("featurize", "Write the VQT feature vectors of a data set, for any classifier to use.") { model, adapter, data, limit, output, batch, threads };
        var backend = BackendOptions.AddTo(cmd);
        cmd.SetAction((r, ct) => Task.FromResult(CommonOptions.Run(() =>
        {
            CommonOptions.ApplyThreads(r.GetValue(threads));
            var outPath = r.GetValue(output)!;
            OwnedOutput.EnsureWritable(outPath, FeaturesFile, "features file");   // before the work: only a features file of ours is replaced
            var compute = backend.Resolve(r, r.GetValue(threads));
            var dir = r.GetValue(adapter)!;
            var a = CommonOptions.LoadAdapter(r, dir);
            if (a.Config.Method != TuningMethod.Vqt) throw new ArgumentException($"Adapter '{dir}' is a {a.Config.Method} adapter; featurize needs a VQT adapter.");
            var backbone = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = a.Config.ImageSize, DropHead = true }));
            var vqt = (IQueryFeatures)a.CreateModel(backbone, dir, compute: compute);   // a VQT model of either backend
            using var _ = vqt as IDisposable;
            var ds = DataOptions.Open(r.GetValue(data)!, r.GetValue(limit));
            // decoded on background threads while the forward passes run (each batch's images first)
            var prepared = PreparedImages.Stream(ds, a.Config.Preprocess with { InputSize = a.Config.ImageSize }, ct);
            var features = QueryFeaturizer.Featurize(vqt, prepared, r.GetValue(batch), ct);
            foreach (var w in prepared.Warnings) Console.Error.WriteLine($"warning: {w}");
            var labels = new Tensor([prepared.Count], prepared.Labels.Select(l => (float)l).ToArray());
            SafeTensorsFile.Write(outPath, new Dictionary<string, Tensor> { ["features"] = features, ["labels"] = labels },
                new Dictionary<string, string> { ["format"] = FeaturesFormat, ["adapter"] = Path.GetFullPath(dir), ["classes"] = string.Join("\n", ds.ClassNames) });
            Console.WriteLine($"wrote {outPath}: features {features.ShapeString}, labels [{prepared.Count}]");
            return 0;
        })));
        return cmd;
    }

    const string FeaturesFormat = "mlnet-memorytokens-features/1";

    /// <summary>A features file of ours: its metadata has our format (or, written before it had one, the adapter and classes keys).</summary>
    static readonly FileArtifact FeaturesFile = new("a features file", path =>
        SafeTensorsFile.ReadMetadata(path) is var m && (m.TryGetValue("format", out var f) ? f.StartsWith("mlnet-memorytokens-features/", StringComparison.Ordinal)
                                                                                             : m.ContainsKey("adapter") && m.ContainsKey("classes")));
}
