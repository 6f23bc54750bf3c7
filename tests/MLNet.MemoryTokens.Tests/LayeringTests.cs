using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Tests;

/// <summary>No import runs upward: engine floor (kernels, IO, imaging, data) → model → tuning (shared, then the methods) →
/// training; the command line on top. Checked on the compiled assemblies (<see cref="Layering"/>): every use of a type from
/// another folder, in signatures and in method bodies.</summary>
public class LayeringTests(ITestOutputHelper output)
{
    static string Src(string project) => Path.Combine(TestPaths.RepoRoot, "src", project);

    /// <summary>The engine's folders, lowest first; a folder uses its own layer and those below, with no cycle inside a layer.</summary>
    internal static readonly string[][] EngineLayers =
    [
        [""],                                              // Tensor
        ["Kernels"],
        ["IO", "Imaging"],
        ["Data"],
        ["Model"],
        ["Tuning"],                                        // what every method shares, and the method table
        ["Tuning/QueryTuning", "Tuning/Baselines"],
        ["Tuning/MemoryTokens"],                           // VQT + memory reads VQT's features
        ["Training", "Onnx"],                              // the loop; export of a trained model to ONNX
    ];

    [Fact]
    public void EngineFoldersUseOnlyTheirOwnLayerAndThoseBelow() => Check(typeof(Tensor).Assembly, Src("MLNet.MemoryTokens"), EngineLayers);

    [Fact]
    public void CommandLineFoldersUseOnlyTheirOwnLayerAndThoseBelow() =>
        Check(typeof(Cli.Program).Assembly, Src("MLNet.MemoryTokens.Cli"), [["Plots"], ["Commands"], ["Commands/Bench"], [""]]);

    [Fact]
    public void EveryEngineFileSitsInTheNamespaceOfItsFolder()
    {
        var root = Src("MLNet.MemoryTokens");
        var wrong = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(p => p is "bin" or "obj"))
            .Select(f => (File: Path.GetRelativePath(root, f), Expected: "MLNet.MemoryTokens" + string.Concat(Path.GetRelativePath(root, Path.GetDirectoryName(f)!)
                .Split(Path.DirectorySeparatorChar).Where(p => p != ".").Select(p => "." + p)), Text: File.ReadAllText(f)))
            .Where(x => !x.Text.Contains($"namespace {x.Expected};"))
            .Select(x => $"{x.File}: expected namespace {x.Expected}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void TheTrainerNamesNoMethod()
    {
        // the loop is method-agnostic: every method-specific part (its model, its step, its caches and phases) comes from the method table
        var trainer = File.ReadAllText(Path.Combine(Src("MLNet.MemoryTokens"), "Training", "Trainer.cs"));
        var names = Enum.GetNames<MLNet.MemoryTokens.Tuning.TuningMethod>().Select(n => "TuningMethod." + n)
            .Concat(typeof(Tensor).Assembly.GetTypes().Where(t => t.Namespace?.StartsWith("MLNet.MemoryTokens.Tuning.", StringComparison.Ordinal) == true && !t.IsNested).Select(t => t.Name))
            .Concat(["VQT", "Vqt", "lasso", "probe", "masked", "Masked", "compress"]);
        var named = names.Where(n => trainer.Contains(n, StringComparison.Ordinal)).ToList();
        Assert.True(named.Count == 0, "Trainer.cs names " + string.Join(", ", named));
    }

    [Fact]
    public void TheOnnxExportNamesNoMethod()
    {
        // each method's part of an export (which adapter tensors, where its head reads) is its DescribeForward in the method
        // table: the export asks the table and names no method
        var named = Directory.GetFiles(Path.Combine(Src("MLNet.MemoryTokens"), "Onnx"), "*.cs")
            .SelectMany(f => Enum.GetNames<MLNet.MemoryTokens.Tuning.TuningMethod>().Where(n => File.ReadAllText(f).Contains("TuningMethod." + n, StringComparison.Ordinal)).Select(n => $"{Path.GetFileName(f)}: TuningMethod.{n}"))
            .ToList();
        Assert.True(named.Count == 0, "The ONNX export names " + string.Join(", ", named));
    }

    void Check(System.Reflection.Assembly assembly, string sourceRoot, string[][] layers)
    {
        var edges = Layering.FolderEdges(assembly, sourceRoot);
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key)) output.WriteLine($"{from,-24} → {to,-24} e.g. {example}");
        var problems = Layering.Violations(edges, layers);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.NotEmpty(edges);   // the check sees the folders at all
    }
}
