using Xunit;

namespace MLNet.MemoryTokens.Tests;

/// <summary>Where the repo, its committed fixtures and the optional <c>../shared</c> data live, seen from a test run.</summary>
public static class TestPaths
{
    /// <summary>The repo root: the first folder above the test binaries that holds MLNet.MemoryTokens.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Committed fixtures, copied beside the test binaries (tests/fixtures → bin/.../fixtures).</summary>
    public static string Fixtures { get; } = Path.Combine(AppContext.BaseDirectory, "fixtures");

    /// <summary><c>../shared</c> beside the repo (real checkpoint and photos), or null when absent (a user's clone).</summary>
    public static string? Shared { get; } = FindShared();

    public static string Fixture(params string[] parts) => Path.Combine([Fixtures, .. parts]);

    public const string SharedMissingReason =
        "../shared (the real ViT-Ti/16 checkpoint and ImageNet photos) is not beside the repo; this test needs it.";

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLNet.MemoryTokens.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }

    static string? FindShared()
    {
        var env = Environment.GetEnvironmentVariable("MMT_SHARED_DIR");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return Path.GetFullPath(env);
        var candidate = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
        return Directory.Exists(Path.Combine(candidate, "models")) ? candidate : null;
    }
}

/// <summary>A fact that needs <c>../shared</c>; skipped with a clear reason where it is absent.</summary>
public sealed class SharedFactAttribute : FactAttribute
{
    public SharedFactAttribute()
    {
        if (TestPaths.Shared is null) Skip = TestPaths.SharedMissingReason;
    }
}

/// <summary>A theory that needs <c>../shared</c>; skipped with a clear reason where it is absent.</summary>
public sealed class SharedTheoryAttribute : TheoryAttribute
{
    public SharedTheoryAttribute()
    {
        if (TestPaths.Shared is null) Skip = TestPaths.SharedMissingReason;
    }
}
