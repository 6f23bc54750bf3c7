using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace NotebookRunner;

/// <summary>Executes one .ipynb cell by cell in a fresh C# kernel (as Polyglot Notebooks would) and collects each cell's
/// outputs as Jupyter outputs: stdout/stderr text, displayed values (text, HTML, image/png), return values, errors.</summary>
public static partial class NotebookExecution
{
    public sealed record CellResult(int Cell, string FirstLine, TimeSpan Elapsed, IReadOnlyList<InteractiveDocumentOutputElement> Outputs, string? Error);

    public sealed record Run(InteractiveDocument Document, IReadOnlyList<CellResult> Cells)
    {
        public CellResult? Failure => Cells.FirstOrDefault(c => c.Error is not null);
    }

    public static KernelInfoCollection KernelInfos() => new()
    {
        new Microsoft.DotNet.Interactive.Documents.KernelInfo("csharp", "C#", ["c#", "C#"]),
        new Microsoft.DotNet.Interactive.Documents.KernelInfo("markdown", "Markdown", ["md"]),
    };

    /// <summary>Runs the notebook with its folder as the current directory. With <paramref name="feed"/>, a
    /// <c>#i "nuget: &lt;feed&gt;"</c> line goes before the first package reference and every
    /// <c>#r "nuget: MLNet.MemoryTokens…"</c> asks for the feed's version; nothing else in the code changes.</summary>
    public static async Task<Run> ExecuteAsync(string path, LocalFeed? feed, TimeSpan cellTimeout, Action<string> log)
    {
        var document = await InteractiveDocument.LoadAsync(new FileInfo(path), KernelInfos());
        var previousDirectory = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        try
        {
            using var kernel = CreateKernel();
            var results = new List<CellResult>();
            bool sourceAdded = false;
            int executionOrder = 0;
            for (int i = 0; i < document.Elements.Count; i++)
            {
                var cell = document.Elements[i];
                if (cell.KernelName is "markdown" or "md" || string.IsNullOrWhiteSpace(cell.Contents)) continue;
                string code = cell.Contents;
                if (feed is not null && OurPackageReference().IsMatch(code))
                {
                    code = OurPackageReference().Replace(code, m => $"{m.Groups["prefix"].Value}{m.Groups["id"].Value}, {feed.Version}\"");
                    if (!sourceAdded) code = $"#i \"nuget: {feed.Folder}\"\n{code}";
                    sourceAdded = true;
                }
                var result = await ExecuteCellAsync(kernel, i, cell, code, ++executionOrder, cellTimeout, log);
                results.Add(result);
                if (result.Error is not null) break;
            }
            return new Run(document, results);
        }
        finally
        {
            Directory.SetCurrentDirectory(previousDirectory);
        }
    }

    /// <summary>Puts the run's outputs into its document and writes it to <paramref name="path"/> (a temporary file, then a rename).</summary>
    public static void Write(Run run, string path)
    {
        int order = 0;
        foreach (var cell in run.Cells)
        {
            var element = run.Document.Elements[cell.Cell];
            element.Outputs.Clear();
            element.Outputs.AddRange(cell.Outputs);
            element.ExecutionOrder = ++order;
        }
        var temporary = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temporary, run.Document.ToJupyterJson() + "\n");   // the document's own metadata, as read
        File.Move(temporary, path, overwrite: true);
    }

    static CompositeKernel CreateKernel()
    {
        // forceRestore: no restore results cached across runs (each run restores from its own, fresh package folder)
        var csharp = new CSharpKernel()
            .UseNugetDirective((k, references) =>
            {
                k.AddAssemblyReferences(references.SelectMany(r => r.AssemblyPaths));
                return Task.CompletedTask;
            }, forceRestore: true)
            .UseKernelHelpers();
        var kernel = new CompositeKernel();
        kernel.Add(csharp, ["c#", "C#"]);
        kernel.DefaultKernelName = "csharp";
        return kernel;
    }

    static async Task<CellResult> ExecuteCellAsync(Kernel kernel, int index, InteractiveDocumentElement cell, string code, int executionOrder, TimeSpan timeout, Action<string> log)
    {
        string firstLine = cell.Contents.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith("#r") && !l.StartsWith("#i")) ?? cell.Contents.Split('\n')[0];
        log($"cell {index}: {Truncate(firstLine, 90)}");
        var collector = new OutputCollector(executionOrder, log);
        var watch = Stopwatch.StartNew();
        using (kernel.KernelEvents.Subscribe(collector))
        {
            var send = kernel.SendAsync(new SubmitCode(code, cell.KernelName ?? "csharp"));
            if (await Task.WhenAny(send, Task.Delay(timeout)) != send)
                collector.Fail($"The cell did not finish within {timeout.TotalSeconds:F0} s.", "Timeout");
            else
            {
                var result = await send;
                if (result.Events.LastOrDefault() is CommandFailed failed && collector.Error is null)
                    collector.Fail(failed.Message, failed.Exception?.GetType().Name ?? "Error");
            }
        }
        log($"cell {index}: {(collector.Error is null ? "ok" : "FAILED")} in {watch.Elapsed.TotalSeconds:F1} s");
        return new CellResult(index, firstLine, watch.Elapsed, collector.Outputs, collector.Error);
    }

    static string Truncate(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";

    /// <summary><c>#r "nuget: MLNet.MemoryTokens.ML, 0.1.0"</c> (the version is optional).</summary>
    [GeneratedRegex("""(?<prefix>#r\s+"nuget:\s*)(?<id>MLNet\.MemoryTokens(\.[A-Za-z]+)*)\s*(,\s*[^"]*)?"?""")]
    private static partial Regex OurPackageReference();

    /// <summary>Turns the kernel's events for one cell into Jupyter outputs, in order; consecutive writes to one stream merge.</summary>
    sealed class OutputCollector(int executionOrder, Action<string> log) : IObserver<KernelEvent>
    {
        readonly Dictionary<string, int> _displayIndex = [];
        readonly HashSet<string> _hidden = [];

        public List<InteractiveDocumentOutputElement> Outputs { get; } = [];
        public string? Error { get; private set; }

        public void Fail(string message, string name)
        {
            Error ??= message;
            Outputs.Add(new ErrorElement(message, name, message.Split('\n')));
            log($"  error: {message}");
        }

        public void OnNext(KernelEvent e)
        {
            switch (e)
            {
                case StandardOutputValueProduced o: Text("stdout", PlainText(o)); break;
                case StandardErrorValueProduced o: Text("stderr", PlainText(o)); break;
                case ReturnValueProduced r:
                    var value = new ReturnValueElement { ExecutionOrder = executionOrder };
                    foreach (var (mime, text) in Data(r)) value.Data[mime] = text;
                    Outputs.Add(value);
                    break;
                case DisplayedValueProduced d:
                    // the package manager's "Installing/Installed packages" panel names temporary feeds and versions: not kept
                    if (d.Value is InstallPackagesMessage) { _hidden.Add(d.ValueId); break; }
                    _displayIndex[d.ValueId] = Outputs.Count;
                    Outputs.Add(new DisplayElement(Data(d)));
                    break;
                case DisplayedValueUpdated u when !_hidden.Contains(u.ValueId):
                    if (_displayIndex.TryGetValue(u.ValueId, out int at)) Outputs[at] = new DisplayElement(Data(u));
                    break;
                case ErrorProduced err: Fail(err.Message, "Error"); break;
                case CommandFailed failed: Fail(failed.Message, failed.Exception?.GetType().Name ?? "Error"); break;
            }
        }

        public void OnError(Exception error) => Fail(error.ToString(), error.GetType().Name);
        public void OnCompleted() { }

        void Text(string stream, string text)
        {
            if (stream == "stdout") foreach (var line in text.TrimEnd('\n').Split('\n')) log($"  | {line}");
            if (Outputs.Count > 0 && Outputs[^1] is TextElement last && last.Name == stream)
                Outputs[^1] = new TextElement(last.Text + text, stream);
            else
                Outputs.Add(new TextElement(text, stream));
        }

        static string PlainText(DisplayEvent e) => e.FormattedValues.FirstOrDefault(f => f.MimeType == "text/plain")?.Value ?? e.Value?.ToString() ?? "";

        static Dictionary<string, object> Data(DisplayEvent e) =>
            e.FormattedValues.Where(f => !f.SuppressDisplay).GroupBy(f => f.MimeType).ToDictionary(g => g.Key, g => (object)g.First().Value);
    }
}
