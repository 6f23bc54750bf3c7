using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>The .NET 10 file-based samples (samples/*.cs) run on tiny inputs. Each runs as a user outside the repository
/// would: a copy whose <c>#:project</c> line is replaced by <c>#:package MLNet.MemoryTokens.ML@&lt;version&gt;</c>, restored
/// from the feed, built in its own artifacts folder (nothing under the repository or the user's run-file cache is written).</summary>
[Collection(PackedFeedCollection.Name)]
public partial class SampleTests(PackedFeed packed, ITestOutputHelper output)
{
    const string ProjectLine = "#:project ../src/MLNet.MemoryTokens.ML/MLNet.MemoryTokens.ML.csproj";
    static readonly string[] Samples = ["fine-tune.cs", "evaluate.cs", "multitask-serving.cs", "vqt-features.cs"];
    static readonly Lock Gate = new();

    /// <summary>The samples copied once per run next to a nuget.config naming the feed; the tiny data and checkpoint beside them.</summary>
    (string Samples, string Data) Prepared()
    {
        lock (Gate)
        {
            string root = Path.Combine(packed.Scratch("samples"), "copies");
            if (!Directory.Exists(root))
            {
                string staging = packed.Scratch("samples-staging");
                foreach (var sample in Samples)
                {
                    var text = File.ReadAllText(Repository.Path("samples", sample));
                    Assert.Contains(ProjectLine, text);
                    File.WriteAllText(Path.Combine(staging, sample), text.Replace(ProjectLine, $"#:package MLNet.MemoryTokens.ML@{packed.Version}"));
                }
                packed.Feed.WriteNuGetConfig(staging);
                string data = Directory.CreateDirectory(Path.Combine(staging, "data")).FullName;
                TinyData.WriteFolder(Path.Combine(data, "colour-train"), 0, 36, TinyData.ColourOf);
                TinyData.WriteFolder(Path.Combine(data, "colour-test"), 36, 18, TinyData.ColourOf);
                TinyData.WriteFolder(Path.Combine(data, "side-train"), 0, 36, TinyData.SideOf);
                TinyData.WriteCheckpoint(data, seed: 2, classes: 4);
                Directory.Move(staging, root);
            }
            return (root, Path.Combine(root, "data"));
        }
    }

    NotebookRunner.ChildProcess.Result Run(string sample, params string[] arguments)
    {
        var (samples, _) = Prepared();
        return packed.Dotnet(output, samples, TimeSpan.FromMinutes(4),
            ["run", "-c", "Release", "--artifacts-path", Path.Combine(packed.Scratch("samples"), "artifacts", Path.GetFileNameWithoutExtension(sample)), sample, "--", .. arguments]);
    }

    string Checkpoint => Path.Combine(Prepared().Data, "tiny_vit_2_4.safetensors");
    string Data(string name) => Path.Combine(Prepared().Data, name);

    [Fact]
    public void EverySampleIsInTheRepositoryAndReferencesTheLibraryProject()
    {
        var found = Directory.GetFiles(Repository.Path("samples"), "*.cs").Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(Samples.Order(), found);
        Assert.True(File.Exists(Path.GetFullPath(Path.Combine(Repository.Path("samples"), "../src/MLNet.MemoryTokens.ML/MLNet.MemoryTokens.ML.csproj"))));
        foreach (var sample in Samples)
        {
            var text = File.ReadAllText(Repository.Path("samples", sample));
            Assert.Contains(ProjectLine, text);
            Assert.Contains("#:package MLNet.MemoryTokens.ML@0.1.0", text);   // the line users outside the repository use, in the header
        }
    }

    [Fact]
    public void FineTuneSavesAPipelineThatEvaluateScoresTheSame()
    {
        string zip = Path.Combine(packed.Scratch("fine-tune"), "colour.zip");
        var fineTune = Run("fine-tune.cs", "--data", Data("colour-train"), "--test", Data("colour-test"), "--model", Checkpoint,
            "--image-size", "16", "--tokens", "2", "--epochs", "4", "--lr", "0.01", "--out", zip);
        Assert.True(fineTune.ExitCode == 0, fineTune.ToString());
        Assert.True(File.Exists(zip));
        var (accuracy, correct) = Accuracy(fineTune.Output);
        Assert.True(accuracy > 0.6, $"fine-tuned accuracy {accuracy} on three separable colours");

        var evaluate = Run("evaluate.cs", "--model-zip", zip, "--test", Data("colour-test"));
        Assert.True(evaluate.ExitCode == 0, evaluate.ToString());
        Assert.Equal((accuracy, correct), Accuracy(evaluate.Output));
        Assert.Contains("Confusion table", evaluate.Output);
    }

    [Fact]
    public void MultiTaskServingScoresEachMaskedTaskAsItScoresAlone()
    {
        string adapters = packed.Scratch("multitask");
        foreach (var (task, train) in new[] { ("colour", "colour-train"), ("side", "side-train") })
        {
            var fineTune = Run("fine-tune.cs", "--data", Data(train), "--test", Data(train), "--model", Checkpoint, "--image-size", "16",
                "--tokens", "2", "--epochs", "2", "--lr", "0.01", "--masked", "--out", Path.Combine(adapters, task + ".zip"), "--adapter-out", Path.Combine(adapters, task));
            Assert.True(fineTune.ExitCode == 0, fineTune.ToString());
        }
        var serve = Run("multitask-serving.cs", "--task", "colour=" + Path.Combine(adapters, "colour"), "--task", "side=" + Path.Combine(adapters, "side"),
            "--data", Data("colour-test"), "--limit", "6");
        Assert.True(serve.ExitCode == 0, serve.ToString());
        Assert.Contains("tasks colour (3 classes), side (2 classes), and the backbone's own head (4 classes)", serve.Output);
        Assert.Contains("task colour: one pass with the others = alone: identical", serve.Output);
        Assert.Contains("task side: one pass with the others = alone: identical", serve.Output);
        Assert.Equal(6, serve.Output.Split('\n').Count(l => l.StartsWith("img00")));
    }

    [Fact]
    public void VqtFeaturesFeedAnMlNetTrainer()
    {
        var run = Run("vqt-features.cs", "--data", Data("colour-train"), "--test", Data("colour-test"), "--model", Checkpoint,
            "--image-size", "16", "--queries", "1", "--epochs", "3", "--lr", "0.01");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("features  96 per image", run.Output);   // D·(1 + L·T) = 32·(1 + 2·1)
        Assert.True(Accuracy(run.Output).Accuracy > 0.6, run.Output);
    }

    [Fact]
    public void MissingDataIsAClearErrorNotACrash()
    {
        var run = Run("fine-tune.cs", "--data", Data("no-such-folder"), "--model", Checkpoint);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("error:", run.Output);
        Assert.Contains("no-such-folder", run.Output);
        Assert.DoesNotContain("Unhandled exception", run.Output);
    }

    static (double Accuracy, string Correct) Accuracy(string text)
    {
        var m = AccuracyLine().Match(text);
        Assert.True(m.Success, $"no test accuracy line in:\n{text}");
        return (double.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture), m.Groups["correct"].Value);
    }

    [GeneratedRegex(@"test accuracy (?<value>[0-9.]+) \((?<correct>\d+/\d+)\)")]
    private static partial Regex AccuracyLine();
}
