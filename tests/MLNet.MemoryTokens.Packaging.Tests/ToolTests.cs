using System.Text.Json;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using NotebookRunner;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>`dotnet tool install` from the feed into a tool path gives a working `mmt`.</summary>
[Collection(PackedFeedCollection.Name)]
public class ToolTests(PackedFeed packed, ITestOutputHelper output)
{
    ChildProcess.Result Mmt(string tools, params string[] arguments)
    {
        // the apphost finds the runtime next to the dotnet that runs these tests
        var dotnet = ChildProcess.Dotnet;
        var environment = new Dictionary<string, string?>();
        if (Path.IsPathRooted(dotnet)) environment["DOTNET_ROOT"] = Path.GetDirectoryName(Path.GetFullPath(dotnet));
        var result = ChildProcess.Run(Path.Combine(tools, "mmt"), arguments, tools, environment, TimeSpan.FromMinutes(2));
        output.WriteLine($"$ mmt {string.Join(' ', arguments)}\n{result.Output}");
        return result;
    }

    [Fact]
    public void ToolInstallsAsMmtAndPredictsWhatTheEnginePredicts()
    {
        using var temp = new TempFolder("mmt-tool-");
        string tools = temp["tools"];
        var install = packed.Dotnet(output, temp.Path, TimeSpan.FromMinutes(3),
            "tool", "install", "MLNet.MemoryTokens.Cli", "--version", packed.Version, "--add-source", packed.Feed.Folder, "--tool-path", tools);
        Assert.True(install.ExitCode == 0, install.ToString());
        Assert.True(File.Exists(Path.Combine(tools, "mmt")), "no mmt command in the tool path");

        var version = Mmt(tools, "--version");
        Assert.Equal(0, version.ExitCode);
        Assert.StartsWith(packed.Version, version.Output.Trim());

        var help = Mmt(tools, "--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var command in new[] { "train", "evaluate", "predict", "featurize" }) Assert.Contains(command, help.Output);

        // predict on a tiny checkpoint with a 5-class head: the same top classes and probabilities as the engine here
        string checkpoint = TinyData.WriteCheckpoint(temp.Path, seed: 3, classes: 5);
        string[] images = [temp["a.bmp"], temp["b.bmp"]];
        TinyData.WriteBmp(TinyData.Image(0), images[0]);
        TinyData.WriteBmp(TinyData.Image(4), images[1]);
        var predict = Mmt(tools, ["predict", "--model", checkpoint, "--top-k", "3", "--json", .. images]);
        Assert.True(predict.ExitCode == 0, predict.ToString());
        var lines = predict.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => l.StartsWith('{')).ToList();
        Assert.Equal(images.Length, lines.Count);

        var backbone = Backbone.Load(checkpoint, new BackboneOptions());
        var logits = backbone.Model.Forward(backbone.PreprocessImages(images.Select(path => ImageDecoder.Load(path)).ToList()));
        for (int i = 0; i < images.Length; i++)
        {
            using var json = JsonDocument.Parse(lines[i]);
            Assert.Equal(images[i], json.RootElement.GetProperty("file").GetString());
            var probabilities = Classification.Softmax(logits.Data.AsSpan(i * 5, 5));
            var expected = Classification.TopK(probabilities, 3);
            var top = json.RootElement.GetProperty("top").EnumerateArray().ToList();
            Assert.Equal(expected, top.Select(t => t.GetProperty("index").GetInt32()));
            Assert.Equal(expected.Select(c => probabilities[c]), top.Select(t => t.GetProperty("probability").GetSingle()));
        }

        // a missing checkpoint is a clear error and a non-zero exit, not a stack trace
        var missing = Mmt(tools, "predict", "--model", temp["missing.safetensors"], images[0]);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("missing.safetensors", missing.Output);
        Assert.DoesNotContain("Unhandled exception", missing.Output);
    }
}
