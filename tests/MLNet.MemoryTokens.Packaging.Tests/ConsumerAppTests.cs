using System.Globalization;
using System.Text.Json;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>A new console app, outside the repository, that knows the library only as NuGet packages from the folder feed:
/// it saves a tiny random ViT as a safetensors checkpoint, trains memory tokens on image files through an ML.NET pipeline
/// (LoadImages with SkiaSharp → MapValueToKey → MemoryTokens), evaluates, and trains the same through the engine API.</summary>
[Collection(PackedFeedCollection.Name)]
public class ConsumerAppTests(PackedFeed packed, ITestOutputHelper output)
{
    const string Program = """
        using System.Globalization;
        using Microsoft.ML;
        using MLNet.MemoryTokens.Data;
        using MLNet.MemoryTokens.IO;
        using MLNet.MemoryTokens.ML;
        using MLNet.MemoryTokens.Model;
        using MLNet.MemoryTokens.Training;
        using MLNet.MemoryTokens.Tuning;

        string checkpoint = args[0], trainFolder = args[1], testFolder = args[2];

        // A tiny random ViT (16×16 images, 4×4 patches, width 32, depth 2), saved as a timm-named safetensors checkpoint.
        var vit = VisionTransformer.CreateRandom(new VitConfig { ImageSize = 16, PatchSize = 4, Dim = 32, Depth = 2, Heads = 2, MlpDim = 64, NumClasses = 0 }, 1);
        SafeTensorsFile.Write(checkpoint, vit.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value));

        var train = ImageDatasets.Open(trainFolder);
        var test = ImageDatasets.Open(testFolder);

        // ML.NET: image files → LoadImages (SkiaSharp) → label → key (class order) → memory tokens from the checkpoint path.
        var ml = new MLContext(seed: 0);
        IDataView Rows(IImageDataset d) => ml.Data.LoadFromEnumerable(Enumerable.Range(0, d.Count)
            .Select(i => new Row { ImagePath = d.SourceOf(i), Label = d.ClassNames[d.LabelOf(i)] }).ToList());
        var pipeline = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(train.ClassNames.Select(c => new ClassRow { Label = c }))))
            .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
            {
                BackbonePath = checkpoint, MemoryTokens = 2, Epochs = 4, BatchSize = 8, LearningRate = 1e-2f, Seed = 0,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(Rows(train));
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(Rows(test)));
        Console.WriteLine($"ml.net accuracy {metrics.MicroAccuracy.ToString("R", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"ml.net log-loss {metrics.LogLoss.ToString("R", CultureInfo.InvariantCulture)}");
        var first = ml.Model.CreatePredictionEngine<Row, Prediction>(model).Predict(new Row { ImagePath = test.SourceOf(0) });
        Console.WriteLine($"prediction {first.PredictedLabel} {first.Score.Max().ToString("R", CultureInfo.InvariantCulture)}");

        // The engine API on the same checkpoint, data and options.
        var backbone = Backbone.Load(checkpoint, new BackboneOptions());
        var result = Trainer.Train(backbone, train, null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 },
            new TrainingOptions { Epochs = 4, BatchSize = 8, LearningRate = 1e-2f, Seed = 0 });
        var engine = Trainer.Evaluate(result.Model, PreparedImages.From(test, Trainer.TrainingPreprocess(backbone)));
        Console.WriteLine($"engine accuracy {engine.Accuracy.ToString("R", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"library {typeof(Trainer).Assembly.Location}");

        class Row { public string ImagePath { get; set; } = ""; public string Label { get; set; } = ""; }
        class ClassRow { public string Label { get; set; } = ""; }
        class Prediction { public float[] Score { get; set; } = []; public string PredictedLabel { get; set; } = ""; }
        """;

    [Fact]
    public void FreshConsoleAppRestoresOnlyFromTheFeedAndTrainsEndToEnd()
    {
        using var temp = new TempFolder("mmt-consumer-");
        string trainFolder = TinyData.WriteFolder(temp.Folder("train"), 0, 36, TinyData.ColourOf);
        string testFolder = TinyData.WriteFolder(temp.Folder("test"), 36, 18, TinyData.ColourOf);
        string checkpoint = temp["tiny.safetensors"];
        string app = temp.Folder("app");
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="MLNet.MemoryTokens.ML" Version="{packed.Version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), Program);
        packed.Feed.WriteNuGetConfig(app);

        var run = packed.Dotnet(output, app, TimeSpan.FromMinutes(5), "run", "-c", "Release", "--", checkpoint, trainFolder, testFolder);
        Assert.True(run.ExitCode == 0, run.ToString());

        // Our packages were restored from the feed into the empty package folder; the app ran the packaged assembly.
        foreach (var id in new[] { "MLNet.MemoryTokens", "MLNet.MemoryTokens.ML" })
        {
            var restored = packed.Feed.Restored(id);
            Assert.True(restored is not null, $"{id} {packed.Version} is not in {packed.Feed.PackagesFolder}");
            Assert.Equal(packed.Feed.Folder, restored.Value.Source);
        }
        using (var assets = JsonDocument.Parse(File.ReadAllText(Path.Combine(app, "obj", "project.assets.json"))))
            Assert.Equal(packed.Feed.PackagesFolder.TrimEnd('/') + "/", assets.RootElement.GetProperty("packageFolders").EnumerateObject().First().Name.TrimEnd('/') + "/");
        Assert.Contains($"library {Path.Combine(app, "bin", "Release", "net10.0", "MLNet.MemoryTokens.dll")}", run.Output);

        // The same numbers as this checkout's engine on the same inputs: training through the packages and through ML.NET
        // learns the same bits.
        var backbone = Backbone.Load(checkpoint, new BackboneOptions());
        var train = ImageDatasets.Open(trainFolder);
        var test = ImageDatasets.Open(testFolder);
        var result = Trainer.Train(backbone, train, null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 },
            new TrainingOptions { Epochs = 4, BatchSize = 8, LearningRate = 1e-2f, Seed = 0 });
        double expected = Trainer.Evaluate(result.Model, PreparedImages.From(test, Trainer.TrainingPreprocess(backbone))).Accuracy;

        Assert.Equal(expected, Number(run.Output, "engine accuracy"));
        Assert.Equal(expected, Number(run.Output, "ml.net accuracy"));
        Assert.True(expected > 0.6, $"accuracy {expected} on three separable colours: the pipeline did not learn");
        double logLoss = Number(run.Output, "ml.net log-loss");
        Assert.True(logLoss > 0 && logLoss < Math.Log(3), $"log-loss {logLoss}");
    }

    internal static double Number(string text, string label)
    {
        var line = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(label + " ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no '{label}' line in:\n{text}");
        return double.Parse(line[(label.Length + 1)..].Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
