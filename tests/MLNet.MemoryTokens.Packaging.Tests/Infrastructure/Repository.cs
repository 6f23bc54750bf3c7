using System.Reflection;

namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>Where the repository is and how this test assembly was built (recorded at build time).</summary>
public static class Repository
{
    static string Metadata(string key) =>
        typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"No {key} metadata.");

    public static string Root { get; } = Metadata("RepositoryRoot");
    public static string Configuration { get; } = Metadata("Configuration");
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>notebooks/Runner's build output (the test project builds it).</summary>
    public static string NotebookRunner => Path("notebooks", "Runner", "bin", Configuration, "net10.0", "NotebookRunner.dll");
}
