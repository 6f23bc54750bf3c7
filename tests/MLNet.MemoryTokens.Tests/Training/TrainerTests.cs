using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Training;

/// <summary>The trainer end to end on a tiny random ViT and a synthetic, learnable image set: train → save → load → predict,
/// repeatability, resume, divergence, and the same through the command line.</summary>
public class TrainerTests
{
    static Backbone TinyBackbone()
    {
        var vit = VisionTransformer.CreateRandom(new VitConfig { ImageSize = 16, PatchSize = 4, Dim = 32, Depth = 2, Heads = 2, MlpDim = 64, NumClasses = 0 }, seed: 3);
        return new Backbone(vit, new PreprocessConfig { InputSize = 16 }, "tiny", Backbone.ComputeFingerprint(vit.Parameters));
    }

    static TrainingOptions Quick(int epochs = 3) => new() { Epochs = epochs, BatchSize = 8, LearningRate = 3e-3f, WarmupEpochs = 0.5, Seed = 11, ValidationFraction = 0.25 };

    [Theory]
    [InlineData(TuningMethod.Memory, false)]
    [InlineData(TuningMethod.Memory, true)]
    [InlineData(TuningMethod.HeadOnly, false)]
    [InlineData(TuningMethod.HeadAndClassToken, false)]
    [InlineData(TuningMethod.Full, false)]
    [InlineData(TuningMethod.Vqt, false)]
    [InlineData(TuningMethod.VqtMemory, false)]
    public void TrainSaveLoadPredictGivesTheSameLogitsAndLearnsTheTask(TuningMethod method, bool masked)
    {
        var backbone = TinyBackbone();
        var tuning = new TuningOptions { Method = method, MemoryTokens = 2, Masked = masked, QueryTokens = 1 };
        var result = Trainer.Train(backbone, new ColourSquares(48, 1), null, tuning, Quick(6));
        var test = PreparedImages.From(new ColourSquares(30, 2), Trainer.TrainingPreprocess(backbone));
        var metrics = Trainer.Evaluate(result.Model, test);
        Assert.True(metrics.Accuracy >= 0.9, $"{method}: test accuracy {metrics.Accuracy:P0} on a colour task");
        var dir = Path.Combine(Path.GetTempPath(), "mmt-adapter-" + Guid.NewGuid().ToString("N"));
        try
        {
            result.Adapter.Save(dir);
            Assert.True(File.Exists(Path.Combine(dir, Adapter.ConfigFile)) && File.Exists(Path.Combine(dir, Adapter.WeightsFile)));
            var loaded = Adapter.Load(dir);
            Assert.Equal(["red", "green", "blue"], loaded.Config.ClassLabels);
            Assert.Equal(method, loaded.Config.Method);
            var fresh = method == TuningMethod.Full ? TinyBackbone() : backbone;
            var again = loaded.CreateModel(fresh, dir);
            Assert.Equal(Trainer.PredictLogits(result.Model, test).Data, Trainer.PredictLogits(again, test).Data);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void CompressedVqtKeepsAFractionOfFeaturesRetrainsTheHeadAndRoundTrips()
    {
        var backbone = TinyBackbone();
        var tuning = new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2, GroupLasso = 1e-3f, KeepFeatureFraction = 0.25 };
        var result = Trainer.Train(backbone, new ColourSquares(48, 1), null, tuning, Quick(6));
        var vqt = (MLNet.MemoryTokens.Tuning.QueryTuning.QueryTunedVit)result.Model;
        int full = 32 * (1 + 2 * 2), kept = (int)Math.Ceiling(0.25 * full);
        Assert.Equal(kept, vqt.KeptFeatures!.Length);
        Assert.Equal([3, kept], vqt.HeadWeight.Shape);
        Assert.Equal(12, result.History.Count);   // 6 epochs of VQT, then 6 of the retrained head
        var test = PreparedImages.From(new ColourSquares(30, 2), Trainer.TrainingPreprocess(backbone));
        Assert.True(Trainer.Evaluate(vqt, test).Accuracy >= 0.9);
        var again = new Adapter(result.Adapter.Config, result.Adapter.Tensors).CreateModel(backbone);
        Assert.Equal(Trainer.PredictLogits(vqt, test).Data, Trainer.PredictLogits(again, test).Data);
    }

    [Fact]
    public void TheSameSeedRepeatsARunBitForBitAndAnotherSeedDoesNot()
    {
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        float[] Run(int seed) => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Quick(2) with { Seed = seed }).Model.Parameters[0].Value.Data;
        Assert.Equal(Run(5), Run(5));
        Assert.NotEqual(Run(5), Run(6));
    }

    [Fact]
    public void TwoProcessesWithTheSameSeedWriteByteIdenticalAdapters()
    {
        var root = Directory.CreateTempSubdirectory("mmt-seed-").FullName;
        try
        {
            var ckpt = Path.Combine(root, "tiny.safetensors");
            SafeTensorsFile.Write(ckpt, TinyBackbone().Model.Parameters);
            var data = WriteColourFolder(Path.Combine(root, "data"), new ColourSquares(24, 4));
            byte[] Run(string name)
            {
                var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "mmt.dll"), "train", "--model", ckpt, "--data", data, "--method", "vqt",
                    "--queries", "1", "--epochs", "2", "--batch", "8", "--seed", "7", "--out", Path.Combine(root, name), "--json" }) psi.ArgumentList.Add(a);
                using var p = System.Diagnostics.Process.Start(psi)!;
                string err = p.StandardError.ReadToEnd(); p.StandardOutput.ReadToEnd(); p.WaitForExit();
                Assert.True(p.ExitCode == 0, err);
                return File.ReadAllBytes(Path.Combine(root, name, Adapter.WeightsFile));
            }
            Assert.Equal(Run("a"), Run("b"));   // shuffles, validation split and query dropout all seeded the same way in both processes
        }
        finally { Directory.Delete(root, true); }
    }

    static string WriteColourFolder(string data, ColourSquares ds)
    {
        for (int i = 0; i < ds.Count; i++)
        {
            var dir = Path.Combine(data, ds.ClassNames[ds.LabelOf(i)]);
            Directory.CreateDirectory(dir);
            using var f = File.Create(Path.Combine(dir, $"{i:D3}.ppm"));
            f.Write(System.Text.Encoding.ASCII.GetBytes("P6\n16 16\n255\n"));
            f.Write(ds.Load(i).Pixels);
        }
        return data;
    }

    [Fact]
    public void ResumingFromACheckpointReproducesTheUninterruptedRun()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mmt-ckpt-" + Guid.NewGuid().ToString("N"));
        try
        {
            var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
            var whole = Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Quick(3));
            // the same 3-epoch run, interrupted after its second epoch
            using (var cts = new CancellationTokenSource())
                Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Quick(3) with
                {
                    CheckpointDirectory = dir, CancellationToken = cts.Token,
                    Progress = new SyncProgress(p => { if (p.Phase == "epoch" && p.Epoch == 2) cts.Cancel(); }),
                }));
            var resumed = Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Quick(3) with { CheckpointDirectory = dir, Resume = true });
            Assert.Equal(3, resumed.History.Count);
            foreach (var (a, b) in whole.Model.Parameters.Zip(resumed.Model.Parameters))
                Assert.True(a.Value.Data.AsSpan().SequenceEqual(b.Value.Data), $"{a.Name} differs after resume");
            var wrong = Assert.Throws<InvalidDataException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null,
                tuning with { MemoryTokens = 3 }, Quick(3) with { CheckpointDirectory = dir, Resume = true }));
            Assert.Contains("m=2", wrong.Message);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Fact]
    public void ANonFiniteLossStopsWithTheStepNumber()
    {
        var options = Quick(2) with { LearningRate = 1e38f, GradientClipNorm = 0 };   // weights jump to ±1e38: logits overflow
        var ex = Assert.Throws<TrainingDivergedException>(() =>
            Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, new TuningOptions { Method = TuningMethod.HeadAndClassToken }, options));
        Assert.Matches(@"at step \d+ \(epoch \d+, batch \d+\)", ex.Message);
    }

    [Fact]
    public void ProgressAndCancellationAreHonoured()
    {
        var seen = new List<TrainingProgress>();
        using var cts = new CancellationTokenSource();
        var options = Quick(5) with
        {
            CancellationToken = cts.Token,
            Progress = new SyncProgress(p => { seen.Add(p); if (p.Phase == "epoch" && p.Epoch == 2) cts.Cancel(); }),
        };
        Assert.ThrowsAny<OperationCanceledException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, new TuningOptions(), options));
        Assert.Contains(seen, p => p.Phase == "train" && p.ImagesPerSecond > 0 && p.TotalSteps == 5 * 3);
        Assert.DoesNotContain(seen, p => p.Epoch > 2);
    }

    sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    [Fact]
    public void AdapterLoadRefusesAnotherBackbone()
    {
        var backbone = TinyBackbone();
        var result = Trainer.Train(backbone, new ColourSquares(24, 1), null, new TuningOptions { MemoryTokens = 1 }, Quick(1));
        var other = VisionTransformer.CreateRandom(backbone.Model.Config, seed: 99);
        var otherBackbone = new Backbone(other, backbone.Preprocess, "other", Backbone.ComputeFingerprint(other.Parameters));
        var ex = Assert.Throws<InvalidOperationException>(() => result.Adapter.CreateModel(otherBackbone, "adapters/x"));
        Assert.Contains("adapters/x", ex.Message);
        Assert.Contains("fingerprint", ex.Message);
    }

    [Fact]
    public void CommandLineTrainsEvaluatesAndPredictsWithAnAdapter()
    {
        var root = Path.Combine(Path.GetTempPath(), "mmt-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            // a checkpoint file, and a folder-per-class data set written as PNG-free PPM files
            Directory.CreateDirectory(root);
            var ckpt = Path.Combine(root, "tiny.safetensors");
            SafeTensorsFile.Write(ckpt, TinyBackbone().Model.Parameters);
            var data = WriteColourFolder(Path.Combine(root, "data"), new ColourSquares(30, 4));
            var adapter = Path.Combine(root, "adapter");
            Assert.Equal(0, Cli(["train", "--model", ckpt, "--data", data, "--method", "memory", "--tokens", "2", "--epochs", "6", "--lr", "3e-3",
                "--batch", "8", "--validation-fraction", "0", "--out", adapter, "--json", "--plot", "true"], out var trainOut));
            Assert.Contains("\"trainable_parameters\"", trainOut);
            // the training curve beside the adapter, as PNG (900×560, readable by our own decoder) and SVG
            Assert.Equal(Path.Combine(adapter, "training_curve.png"), JsonDocument.Parse(trainOut).RootElement.GetProperty("training_curve").GetString());
            var curve = MLNet.MemoryTokens.Imaging.ImageDecoder.Load(Path.Combine(adapter, "training_curve.png"));
            Assert.Equal((900, 560), (curve.Width, curve.Height));
            Assert.True(curve.Pixels.Distinct().Count() > 8, "the curve image is blank");
            Assert.Contains("epoch", File.ReadAllText(Path.Combine(adapter, "training_curve.svg")));
            Assert.Equal(0, Cli(["evaluate", "--model", ckpt, "--adapter", adapter, "--data", data, "--json", "--plot", Path.Combine(root, "confusion.png")], out var evalOut));
            var eval = JsonDocument.Parse(evalOut).RootElement;
            Assert.True(eval.GetProperty("accuracy").GetDouble() >= 0.9, evalOut);
            Assert.Equal(3, eval.GetProperty("confusion_matrix").GetArrayLength());
            Assert.Equal((900, 560), (MLNet.MemoryTokens.Imaging.ImageDecoder.Load(Path.Combine(root, "confusion.png")) is var heat ? (heat.Width, heat.Height) : default));
            Assert.Contains("predicted class", File.ReadAllText(Path.Combine(root, "confusion.svg")));
            // output that is not a terminal (as here) gets no plot unless asked
            var quiet = Path.Combine(root, "quiet");
            Assert.Equal(0, Cli(["train", "--model", ckpt, "--data", data, "--tokens", "1", "--epochs", "1", "--validation-fraction", "0", "--out", quiet], out _));
            Assert.False(File.Exists(Path.Combine(quiet, "training_curve.png")));
            Assert.Equal(0, Cli(["predict", "--model", ckpt, "--adapter", adapter, "--json", "--top-k", "2", Path.Combine(data, "blue")], out var predOut));
            var lines = predOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(10, lines.Length);
            int blue = lines.Count(l => JsonDocument.Parse(l).RootElement.GetProperty("top")[0].GetProperty("label").GetString() == "blue");
            Assert.True(blue >= 9, predOut);
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Fact]
    public void CommandLineTrainsAnExtensionOnTopOfAMaskedTask()
    {
        var root = Path.Combine(Path.GetTempPath(), "mmt-ext-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(root);
            var ckpt = Path.Combine(root, "tiny.safetensors");
            SafeTensorsFile.Write(ckpt, TinyBackbone().Model.Parameters);
            var data = WriteColourFolder(Path.Combine(root, "data"), new ColourSquares(30, 4));
            string first = Path.Combine(root, "first"), second = Path.Combine(root, "second");
            string[] common = ["--model", ckpt, "--data", data, "--method", "memory", "--masked", "--tokens", "1", "--epochs", "4", "--lr", "3e-3", "--batch", "8", "--validation-fraction", "0"];
            Assert.Equal(0, Cli(["train", .. common, "--out", first], out _));
            Assert.Equal(0, Cli(["train", .. common, "--extends", first, "--out", second], out _));
            var config = Adapter.Load(second).Config;
            Assert.Equal(Adapter.Load(first).Fingerprint, Assert.Single(config.Extends).Fingerprint);
            // evaluate finds the task it extends where it was saved
            Assert.Equal(0, Cli(["evaluate", "--model", ckpt, "--adapter", second, "--data", data, "--json"], out var evalOut));
            Assert.True(JsonDocument.Parse(evalOut).RootElement.GetProperty("accuracy").GetDouble() >= 0.9, evalOut);
            // ... and says so clearly when it has gone
            Directory.Delete(first, true);
            Assert.NotEqual(0, Cli(["evaluate", "--model", ckpt, "--adapter", second, "--data", data], out _));
            // extending an unmasked adapter is refused
            string plain = Path.Combine(root, "plain");
            Assert.Equal(0, Cli(["train", "--model", ckpt, "--data", data, "--method", "memory", "--tokens", "1", "--epochs", "1", "--validation-fraction", "0", "--out", plain], out _));
            Assert.NotEqual(0, Cli(["train", .. common, "--extends", plain, "--out", Path.Combine(root, "bad")], out _));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    static readonly object ConsoleLock = new();

    internal static int Cli(string[] args, out string stdout)
    {
        lock (ConsoleLock)
        {
            var old = Console.Out;
            var sw = new StringWriter();
            Console.SetOut(sw);
            try { return MLNet.MemoryTokens.Cli.Program.Main(args); }
            finally { Console.SetOut(old); stdout = sw.ToString(); }
        }
    }
}
