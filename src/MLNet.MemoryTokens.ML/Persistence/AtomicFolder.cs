namespace MLNet.MemoryTokens.ML.Persistence;

/// <summary>Writes a folder as one unit: into a fresh sibling first, then swapped in, so a failure never leaves a
/// half-written folder where the previous one was (the engine's adapters are saved the same way).</summary>
internal static class AtomicFolder
{
    public static void Write(string directory, Action<string> fill)
    {
        directory = Path.GetFullPath(directory.TrimEnd(Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
        var staging = directory + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            Directory.CreateDirectory(staging);
            fill(staging);
            string? old = null;
            if (Directory.Exists(directory))
            {
                old = directory + ".old-" + Guid.NewGuid().ToString("N")[..8];
                Directory.Move(directory, old);
            }
            Directory.Move(staging, directory);
            if (old is not null) Directory.Delete(old, recursive: true);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }
}
