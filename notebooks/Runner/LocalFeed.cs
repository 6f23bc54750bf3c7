namespace NotebookRunner;

/// <summary>A folder NuGet feed holding the repository's packages, packed from source with a unique prerelease version
/// (so no package cache can answer for it), and the environment that restores them into a fresh package folder while every
/// other package still comes from the user's global folder or the registry. Shared with the packaging tests.</summary>
public sealed class LocalFeed
{
    /// <summary>The packages a user installs (the AutoML one needs Microsoft.ML.AutoML, which not every registry serves).</summary>
    public static readonly string[] DefaultProjects =
    [
        "src/MLNet.MemoryTokens/MLNet.MemoryTokens.csproj",
        "src/MLNet.MemoryTokens.ML/MLNet.MemoryTokens.ML.csproj",
        "src/MLNet.MemoryTokens.Cli/MLNet.MemoryTokens.Cli.csproj",
    ];

    public const string PackageIdPrefix = "MLNet.MemoryTokens";

    /// <summary>The feed folder (*.nupkg and *.snupkg).</summary>
    public required string Folder { get; init; }

    /// <summary>The version every package was packed with, e.g. 0.1.0-local.20261207184501.4242.</summary>
    public required string Version { get; init; }

    /// <summary>An empty package folder for restores against this feed (NUGET_PACKAGES).</summary>
    public required string PackagesFolder { get; init; }

    /// <summary>A unique prerelease label: local.&lt;UTC time&gt;.&lt;process id&gt;.</summary>
    public static string UniqueSuffix() => $"local.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

    /// <summary>Packs <paramref name="projects"/> (relative to <paramref name="repoRoot"/>) into <c>workFolder/feed</c>, building
    /// them in <c>workFolder/artifacts</c> so nothing under the repository's bin/obj folders is touched.</summary>
    public static LocalFeed Pack(string repoRoot, string workFolder, string versionSuffix, IEnumerable<string>? projects = null, Action<string>? log = null)
    {
        string feed = Path.Combine(workFolder, "feed"), artifacts = Path.Combine(workFolder, "artifacts"), packages = Path.Combine(workFolder, "packages");
        Directory.CreateDirectory(feed);
        Directory.CreateDirectory(packages);
        foreach (var project in projects ?? DefaultProjects)
        {
            log?.Invoke($"dotnet pack {project} --version-suffix {versionSuffix}");
            var result = ChildProcess.Run(ChildProcess.Dotnet,
                ["pack", Path.Combine(repoRoot, project), "-c", "Release", "-o", feed, "--artifacts-path", artifacts, "--version-suffix", versionSuffix, "-nologo"],
                repoRoot, timeout: TimeSpan.FromMinutes(5));
            if (result.ExitCode != 0) throw new InvalidOperationException($"dotnet pack {project} failed: {result}");
        }
        var engine = Directory.GetFiles(feed, $"{PackageIdPrefix}.*.nupkg")
            .Select(Path.GetFileNameWithoutExtension)
            .Select(name => name![(PackageIdPrefix.Length + 1)..])
            .FirstOrDefault(v => char.IsDigit(v[0]) && v.EndsWith("-" + versionSuffix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"No {PackageIdPrefix} package with suffix {versionSuffix} in {feed}.");
        return new LocalFeed { Folder = feed, Version = engine, PackagesFolder = packages };
    }

    /// <summary>Environment for a restore against this feed: our packages land in the empty <see cref="PackagesFolder"/>;
    /// the user's global package folder serves as a read-only fallback for everything else (nothing is written there).</summary>
    public IReadOnlyDictionary<string, string?> RestoreEnvironment()
    {
        string global = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
            ? set
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string fallback = Environment.GetEnvironmentVariable("NUGET_FALLBACK_PACKAGES") is { Length: > 0 } more ? $"{global}{Path.PathSeparator}{more}" : global;
        return new Dictionary<string, string?> { ["NUGET_PACKAGES"] = PackagesFolder, ["NUGET_FALLBACK_PACKAGES"] = fallback };
    }

    /// <summary>A nuget.config in <paramref name="folder"/> that adds this feed to the user's package sources.</summary>
    public void WriteNuGetConfig(string folder) =>
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="mlnet-memorytokens-local" value="{System.Security.SecurityElement.Escape(Folder)}" />
              </packageSources>
            </configuration>
            """);

    /// <summary>Where a restore put package <paramref name="id"/> of this version, and the source it came from
    /// (from the .nupkg.metadata NuGet writes); null when it is not in <see cref="PackagesFolder"/>.</summary>
    public (string Folder, string? Source)? Restored(string id)
    {
        var folder = Path.Combine(PackagesFolder, id.ToLowerInvariant(), Version.ToLowerInvariant());
        var metadata = Path.Combine(folder, ".nupkg.metadata");
        if (!File.Exists(metadata)) return null;
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(metadata));
        return (folder, json.RootElement.TryGetProperty("source", out var s) ? s.GetString() : null);
    }
}
