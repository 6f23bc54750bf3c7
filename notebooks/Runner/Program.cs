// Runs the repository's notebooks as CI and a user would: every code cell in order, in a fresh .NET Interactive C#
// kernel, against MLNet.MemoryTokens packages packed from this checkout. Exit 0 when every cell ran, 1 on the first failing
// cell (its error printed), 2 on bad arguments.
//   dotnet run --project notebooks/Runner -c Release                  # pack src/ into a temporary feed, run notebooks/*.ipynb
//   dotnet run --project notebooks/Runner -c Release -- --write       # … and write the outputs back into the notebooks
//   NotebookRunner --feed <folder> --version <v> [--packages <folder>] [notebook.ipynb…]   # packages packed already (the tests)
using NotebookRunner;

const string Usage = """
    NotebookRunner [--write | --out <folder>] [--feed <folder> --version <v> [--packages <folder>]] [--cell-timeout <s>] [notebook.ipynb ...]

      notebook.ipynb     notebooks to run (default: every notebooks/*.ipynb of the repository)
      --write            put each cell's outputs back into its notebook (only when every cell ran)
      --out <folder>     write each executed notebook (outputs, errors included) into this folder instead
      --feed, --version  a folder feed that already holds MLNet.MemoryTokens* packages of that version
                         (default: pack src/ into a temporary feed with a unique prerelease version)
      --packages         an empty folder to restore our packages into (default: a temporary one)
      --cell-timeout     seconds one cell may take (default 600)
    """;

// The C# kernel captures Console.Out while a cell runs; our own log goes straight to the process's stdout.
var log = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
void Log(string line) { lock (log) log.WriteLine(line); }

string? feedFolder = null, version = null, packages = null, outFolder = null;
bool write = false;
var cellTimeout = TimeSpan.FromMinutes(10);
var notebooks = new List<string>();
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
        switch (args[i])
        {
            case "--write": write = true; break;
            case "--feed": feedFolder = Path.GetFullPath(Next()); break;
            case "--version": version = Next(); break;
            case "--out": outFolder = Path.GetFullPath(Next()); break;
            case "--packages": packages = Path.GetFullPath(Next()); break;
            case "--cell-timeout": cellTimeout = TimeSpan.FromSeconds(int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)); break;
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            case var a when a.StartsWith('-'): throw new ArgumentException($"Unknown option '{a}'.");
            case var file: notebooks.Add(Path.GetFullPath(file)); break;
        }
    }
    if (write && outFolder is not null) throw new ArgumentException("--write and --out exclude each other.");
    if ((feedFolder is null) != (version is null)) throw new ArgumentException("--feed and --version go together.");
    if (feedFolder is not null && !Directory.Exists(feedFolder)) throw new ArgumentException($"Feed folder '{feedFolder}' does not exist.");
    foreach (var n in notebooks)
        if (!File.Exists(n) || !n.EndsWith(".ipynb", StringComparison.OrdinalIgnoreCase)) throw new ArgumentException($"'{n}' is not a .ipynb file.");
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine($"error: {e.Message}\n\n{Usage}");
    return 2;
}

string? repoRoot = RepoRoot();
if (notebooks.Count == 0)
{
    if (repoRoot is null) { Console.Error.WriteLine("error: not inside the repository (no MLNet.MemoryTokens.sln above here); name the notebooks."); return 2; }
    notebooks.AddRange(Directory.GetFiles(Path.Combine(repoRoot, "notebooks"), "*.ipynb").Order(StringComparer.Ordinal));
}

// Our own scratch folder (feed, build artifacts, package folder); removed at the end. Nothing else is written but --write's notebooks.
string work = Directory.CreateTempSubdirectory("mmt-notebooks-").FullName;
try
{
    LocalFeed feed;
    if (feedFolder is not null)
        feed = new LocalFeed { Folder = feedFolder, Version = version!, PackagesFolder = packages ?? Directory.CreateDirectory(Path.Combine(work, "packages")).FullName };
    else
    {
        if (repoRoot is null) { Console.Error.WriteLine("error: not inside the repository, so nothing to pack; give --feed and --version."); return 2; }
        feed = LocalFeed.Pack(repoRoot, work, LocalFeed.UniqueSuffix(), log: Log);
    }
    Log($"packages {feed.Version} from {feed.Folder}");
    // the kernel's package manager restores in child processes, which inherit these
    foreach (var (key, value) in feed.RestoreEnvironment()) Environment.SetEnvironmentVariable(key, value);

    int failures = 0;
    foreach (var path in notebooks)
    {
        Log($"== {path}");
        var run = await NotebookExecution.ExecuteAsync(path, feed, cellTimeout, Log);
        if (outFolder is not null)
        {
            Directory.CreateDirectory(outFolder);
            NotebookExecution.Write(run, Path.Combine(outFolder, Path.GetFileName(path)));
        }
        if (run.Failure is { } failed)
        {
            failures++;
            Log($"FAILED {Path.GetFileName(path)}: cell {failed.Cell} ({failed.FirstLine}):\n{failed.Error}");
            continue;
        }
        Log($"ok {Path.GetFileName(path)}: {run.Cells.Count} code cells in {run.Cells.Sum(c => c.Elapsed.TotalSeconds):F1} s");
        if (write)
        {
            NotebookExecution.Write(run, path);
            Log($"wrote the outputs into {path}");
        }
    }
    Log($"{notebooks.Count - failures} notebooks ran, {failures} failed");
    return failures == 0 ? 0 : 1;
}
finally
{
    try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
}

static string? RepoRoot()
{
    foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLNet.MemoryTokens.sln"))) return dir.FullName;
    return null;
}
