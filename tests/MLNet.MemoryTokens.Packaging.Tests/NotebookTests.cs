using System.Text.Json;
using System.Text.RegularExpressions;
using NotebookRunner;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>Every notebook in notebooks/ runs cell by cell (notebooks/Runner: .NET Interactive's C# kernel) against the
/// packed packages; a failing cell fails the test. The committed notebooks carry the outputs of such a run.</summary>
[Collection(PackedFeedCollection.Name)]
public partial class NotebookTests(PackedFeed packed, ITestOutputHelper output)
{
    static string[] Notebooks => Directory.GetFiles(Repository.Path("notebooks"), "*.ipynb").Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void EveryNotebookRunsAgainstThePackedPackages()
    {
        Assert.NotEmpty(Notebooks);
        Assert.True(File.Exists(Repository.NotebookRunner), $"{Repository.NotebookRunner} was not built");
        string executed = packed.Scratch("notebooks-out");
        // not packed.Dotnet: the runner sets up the restore environment itself (our packages into --packages)
        var run = ChildProcess.Run(ChildProcess.Dotnet,
            [Repository.NotebookRunner, "--feed", packed.Feed.Folder, "--version", packed.Version, "--packages", packed.Feed.PackagesFolder, "--out", executed, .. Notebooks],
            Repository.Path("notebooks"), timeout: TimeSpan.FromMinutes(8));
        output.WriteLine(run.ToString());
        Assert.True(run.ExitCode == 0, run.ToString());

        foreach (var notebook in Notebooks)
        {
            using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(executed, Path.GetFileName(notebook))));
            Assert.DoesNotContain(Outputs(document), o => o.GetProperty("output_type").GetString() == "error");
        }

        // The ML.NET notebook: engine API and ML.NET pipeline score the same test accuracy, and it draws its plots.
        using var mlnet = JsonDocument.Parse(File.ReadAllText(Path.Combine(executed, "MemoryTokensMlNet.ipynb")));
        var text = string.Concat(Outputs(mlnet).Where(o => o.GetProperty("output_type").GetString() == "stream").Select(o => Text(o.GetProperty("text"))));
        var same = SideBySide().Match(text);
        Assert.True(same.Success, $"no side-by-side accuracy line in:\n{text}");
        Assert.Equal(same.Groups["engine"].Value, same.Groups["mlnet"].Value);
        Assert.Equal("identical", same.Groups["verdict"].Value);
        Assert.Contains("trained tensors  bit-identical", text);
        Assert.Equal(2, Pngs(mlnet).Count());
    }

    /// <summary>A cell that throws stops the run with exit 1 and its error, later cells do not run, and --write leaves the
    /// notebook as it was.</summary>
    [Fact]
    public void AFailingCellFailsTheRunAndWritesNothing()
    {
        string folder = packed.Scratch("failing-notebook");
        string notebook = Path.Combine(folder, "Failing.ipynb");
        static object Cell(string code) => new Dictionary<string, object?>
        {
            ["cell_type"] = "code", ["execution_count"] = null, ["metadata"] = new { }, ["outputs"] = Array.Empty<object>(), ["source"] = new[] { code },
        };
        File.WriteAllText(notebook, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["cells"] = new[] { Cell("Console.WriteLine(\"before\");"), Cell("throw new InvalidOperationException(\"boom from cell two\");"), Cell("Console.WriteLine(\"after\");") },
            ["metadata"] = new { kernelspec = new { display_name = ".NET (C#)", language = "C#", name = ".net-csharp" } },
            ["nbformat"] = 4, ["nbformat_minor"] = 5,
        }));
        string before = File.ReadAllText(notebook);
        var run = ChildProcess.Run(ChildProcess.Dotnet,
            [Repository.NotebookRunner, "--feed", packed.Feed.Folder, "--version", packed.Version, "--packages", packed.Feed.PackagesFolder, "--write", notebook],
            folder, timeout: TimeSpan.FromMinutes(3));
        output.WriteLine(run.ToString());
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("  | before", run.Output);
        Assert.Contains("boom from cell two", run.Output);
        Assert.Contains("FAILED Failing.ipynb: cell 1", run.Output);
        Assert.DoesNotContain("  | after", run.Output);
        Assert.Equal(before, File.ReadAllText(notebook));
    }

    /// <summary>The committed notebooks were executed (--write): every code cell has run, none failed, the plots are there.</summary>
    [Fact]
    public void CommittedNotebooksCarryTheOutputsOfARun()
    {
        foreach (var notebook in Notebooks)
        {
            using var document = JsonDocument.Parse(File.ReadAllText(notebook));
            var code = document.RootElement.GetProperty("cells").EnumerateArray().Where(c => c.GetProperty("cell_type").GetString() == "code").ToList();
            Assert.All(code, c => Assert.True(c.GetProperty("execution_count").ValueKind == JsonValueKind.Number, $"{notebook}: a code cell was not executed"));
            Assert.DoesNotContain(Outputs(document), o => o.GetProperty("output_type").GetString() == "error");
            Assert.Contains(Outputs(document), o => o.GetProperty("output_type").GetString() == "stream");
            Assert.All(Pngs(document), png => Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]));
            // nothing from the machine that ran it: no temporary feed or version
            Assert.DoesNotContain("-local.", File.ReadAllText(notebook));
        }
        using var mlnet = JsonDocument.Parse(File.ReadAllText(Repository.Path("notebooks", "MemoryTokensMlNet.ipynb")));
        Assert.Equal(2, Pngs(mlnet).Count());
    }

    static IEnumerable<JsonElement> Outputs(JsonDocument notebook) =>
        notebook.RootElement.GetProperty("cells").EnumerateArray().Where(c => c.TryGetProperty("outputs", out _)).SelectMany(c => c.GetProperty("outputs").EnumerateArray());

    static IEnumerable<byte[]> Pngs(JsonDocument notebook) =>
        Outputs(notebook).Where(o => o.TryGetProperty("data", out var d) && d.TryGetProperty("image/png", out _))
            .Select(o => Convert.FromBase64String(Text(o.GetProperty("data").GetProperty("image/png")).Replace("\n", "")));

    static string Text(JsonElement e) => e.ValueKind == JsonValueKind.Array ? string.Concat(e.EnumerateArray().Select(l => l.GetString())) : e.GetString() ?? "";

    [GeneratedRegex(@"test accuracy\s+engine API (?<engine>[0-9.]+)\s+ML\.NET (?<mlnet>[0-9.]+)\s+(?<verdict>\w+)")]
    private static partial Regex SideBySide();
}
