namespace MLNet.MemoryTokens.Packaging.Tests;

/// <summary>A fresh folder under the temp directory, deleted on dispose (only what we created).</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder(string prefix = "mmt-packaging-") => Path = Directory.CreateTempSubdirectory(prefix).FullName;
    public string Path { get; }
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public string Folder(string name) => Directory.CreateDirectory(this[name]).FullName;
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
