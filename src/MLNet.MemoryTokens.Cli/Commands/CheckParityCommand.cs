using System.CommandLine;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>mmt check-parity</c>: our features and logits against a PyTorch dump (reference/dump_reference_outputs.py) of the same checkpoint and input.</summary>
internal static class CheckParityCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var reference = new Option<FileInfo>("--reference") { Description = "safetensors with images [B,3,S,S], features [B,N,D], logits [B,C] from the PyTorch reference.", Required = true };
        var tolerance = new Option<double>("--tolerance") { Description = "Largest allowed absolute difference.", DefaultValueFactory = _ => 1e-4 };
        var cmd = new Command("check-parity", "Compare our forward pass with a PyTorch reference dump; exit 1 above the tolerance.") { model, reference, tolerance };
        cmd.SetAction(r => CommonOptions.Run(() =>
        {
            var dump = SafeTensorsFile.Read(r.GetValue(reference)!.FullName).Tensors;
            var images = dump["images"];
            var backbone = Backbone.Load(r.GetValue(model)!, CommonOptions.Weights(r, new BackboneOptions { ImageSize = images.Shape[2] }));
            var features = backbone.Model.ForwardFeatures(images);
            var logits = backbone.Model.ForwardHead(features);
            double df = MaxAbs(dump["features"].Data, features.Data), dl = MaxAbs(dump["logits"].Data, logits.Data);
            double tol = r.GetValue(tolerance);
            Console.WriteLine($"input {images.ShapeString}: max |features - PyTorch| = {df:E2}, max |logits - PyTorch| = {dl:E2} (tolerance {tol:E0})");
            return df <= tol && dl <= tol ? 0 : 1;
        }));
        return cmd;
    }

    static double MaxAbs(float[] a, float[] b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"Reference has {a.Length} values, ours {b.Length}.");
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }
}
