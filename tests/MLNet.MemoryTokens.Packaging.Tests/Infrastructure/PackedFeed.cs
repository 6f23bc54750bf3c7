using NotebookRunner;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>The repository's packages packed once for the whole test run into a temporary folder feed, with a unique
/// prerelease version (0.1.0-local.&lt;time&gt;.&lt;pid&gt;) that no package cache or registry can answer for.</summary>
public sealed class PackedFeed : IDisposable
{
    readonly TempFolder _work = new("mmt-feed-");

    public PackedFeed()
    {
        Feed = LocalFeed.Pack(Repository.Root, _work.Path, LocalFeed.UniqueSuffix());
    }

    public LocalFeed Feed { get; }

    /// <summary>A subfolder of this run's scratch folder (removed with the feed at the end of the run).</summary>
    public string Scratch(string name) => Directory.CreateDirectory(Path.Combine(_work.Path, name)).FullName;
    public string Version => Feed.Version;

    /// <summary>Runs dotnet with the feed's restore environment (our packages into the empty package folder, the rest from
    /// the user's global folder or the registry) and fails the test, with the output, on a non-zero exit.</summary>
    public ChildProcess.Result Dotnet(ITestOutputHelper output, string workingDirectory, TimeSpan timeout, params string[] arguments)
    {
        var result = ChildProcess.Run(ChildProcess.Dotnet, arguments, workingDirectory, Feed.RestoreEnvironment(), timeout);
        output.WriteLine($"$ dotnet {string.Join(' ', arguments)}  ({result.Elapsed.TotalSeconds:F1} s)");
        output.WriteLine(result.Output);
        Assert.False(result.TimedOut, $"dotnet {string.Join(' ', arguments)} timed out");
        return result;
    }

    public void Dispose()
    {
        ForgetRunFileCaches();
        _work.Dispose();
    }

    /// <summary>`dotnet run file.cs` keeps a small build cache per source path under ~/.local/share/dotnet/runfile even with
    /// --artifacts-path; the ones for our scratch copies (their csc.rsp names our folder) go with the rest of our files.</summary>
    void ForgetRunFileCaches()
    {
        var root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "dotnet", "runfile");
        if (!Directory.Exists(root)) return;
        foreach (var dir in Directory.EnumerateDirectories(root))
        {
            var rsp = Path.Combine(dir, "csc.rsp");
            try
            {
                if (File.Exists(rsp) && File.ReadAllText(rsp).Contains(_work.Path, StringComparison.Ordinal)) Directory.Delete(dir, recursive: true);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PackedFeedCollection : ICollectionFixture<PackedFeed>
{
    public const string Name = "packed feed";
}
