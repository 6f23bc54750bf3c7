using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

/// <summary>A fact that needs a folder outside the repo (a system data package, say); skipped with the reason where it is absent.</summary>
public sealed class FactIfDirectoryExistsAttribute : FactAttribute
{
    public FactIfDirectoryExistsAttribute(string directory, string whatItIs)
    {
        if (!Directory.Exists(directory)) Skip = $"{directory} is absent ({whatItIs}); this test compares against it.";
    }
}
