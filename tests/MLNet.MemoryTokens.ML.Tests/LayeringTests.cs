using MLNet.MemoryTokens.Tests;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>The ML.NET layer's folders use only their own layer and those below, with no cycle (checked on the compiled
/// assembly, as the engine's: <see cref="Layering"/>).</summary>
public class LayeringTests(ITestOutputHelper output)
{
    [Fact]
    public void FoldersUseOnlyTheirOwnLayerAndThoseBelow()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "MLNet.MemoryTokens.sln"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("MLNet.MemoryTokens.sln");
        var edges = Layering.FolderEdges(typeof(VitClassifierTransformer).Assembly, Path.Combine(root, "src", "MLNet.MemoryTokens.ML"));
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key)) output.WriteLine($"{from,-14} → {to,-14} e.g. {example}");
        var problems = Layering.Violations(edges, Layers);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.NotEmpty(edges);
    }

    /// <summary>Lowest first: hosting and schema helpers; reading ML.NET data; saving components; scoring (the transformers'
    /// shared base); fitting (the one training path); the classifiers; the featurizer and the multi-task scorer; the catalogs
    /// and the transformers' ONNX export.</summary>
    static readonly string[][] Layers =
    [
        ["Hosting", "Schema"],
        ["Data"],
        ["Persistence"],
        ["Scoring"],
        ["Fitting"],
        ["Trainers"],
        ["Featurizers", "MultiTask"],
        ["Catalog", "AutoML", "Onnx"],
    ];
}
