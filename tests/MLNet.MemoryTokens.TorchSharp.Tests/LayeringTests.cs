using MLNet.MemoryTokens.Tests;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The backend's folders layer as the engine's do (checked on the compiled assembly), each file sits in its folder's
/// namespace, and only the method table's registrations (<c>Compute/</c>) say which method is which.</summary>
public class LayeringTests(ITestOutputHelper output)
{
    static string Src => Path.Combine(TestPaths.RepoRoot, "src", "MLNet.MemoryTokens.TorchSharp");

    /// <summary>Lowest first: the ELF edit, LibTorch loading and tensor moves, the ViT, the tuned models, the trainer-facing steps
    /// and device optimizer, each method's compute, the registration, the benchmarks.</summary>
    internal static readonly string[][] Layers =
    [
        ["build"], ["Native"], ["Model"], ["Tuning"], ["Tuning/QueryTuning"], ["Tuning/MemoryTokens"], ["Training"], ["Compute"], [""], ["Bench"],
    ];

    [Fact]
    public void BackendFoldersUseOnlyTheirOwnLayerAndThoseBelow()
    {
        var edges = Layering.FolderEdges(typeof(TorchSharpBackend).Assembly, Src);
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key)) output.WriteLine($"{from,-24} → {to,-24} e.g. {example}");
        var problems = Layering.Violations(edges, Layers);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.NotEmpty(edges);
    }

    static IEnumerable<(string File, string Text)> Sources() => Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories)
        .Where(f => !Path.GetRelativePath(Src, f).Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj"))
        .Select(f => (Path.GetRelativePath(Src, f), File.ReadAllText(f)));

    [Fact]
    public void EveryFileSitsInTheNamespaceOfItsFolder()
    {
        var wrong = Sources().Where(x => !x.File.StartsWith("build" + Path.DirectorySeparatorChar, StringComparison.Ordinal))   // the MSBuild task's file: Native
            .Select(x => (x.File, x.Text, Expected: "MLNet.MemoryTokens.TorchSharp" + string.Concat((Path.GetDirectoryName(x.File) ?? "")
                .Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Select(p => "." + p))))
            .Where(x => !x.Text.Contains($"namespace {x.Expected};")).Select(x => $"{x.File}: expected namespace {x.Expected}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    /// <summary>Nothing outside the method table's registrations switches on the method: the computes in <c>Compute/</c> each
    /// name theirs; the multi-task pass (a memory-token feature) checks that its adapters are masked memory ones.</summary>
    [Fact]
    public void OnlyTheComputesNameAMethod()
    {
        var named = Sources().Where(x => !x.File.StartsWith("Compute" + Path.DirectorySeparatorChar, StringComparison.Ordinal)
                && x.File != Path.Combine("Tuning", "MemoryTokens", "TorchMultiTaskVit.cs"))
            .Where(x => x.Text.Contains("TuningMethod.", StringComparison.Ordinal) || x.Text.Contains("switch", StringComparison.Ordinal) && x.Text.Contains(".Method", StringComparison.Ordinal))
            .Select(x => x.File).ToList();
        Assert.True(named.Count == 0, "these files name a method: " + string.Join(", ", named));
    }
}
