namespace MLNet.MemoryTokens.IO;

/// <summary>Replaces a file all at once: readers see the old content or the new, never a half-written file.</summary>
public static class AtomicFile
{
    /// <summary>Writes via a temp file in the same directory, flushes to disk, then renames over the target; on any failure (including
    /// disk full) deletes the temp file, leaves an existing target untouched, and throws an <see cref="IOException"/> naming the target.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string target = Path.GetFullPath(path);
        // Same directory, so the final rename never crosses a file system (and so is atomic); hidden, and unique per writer.
        string temp = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(FaultInjection.Value?.Invoke(target, stream) ?? stream);
                stream.Flush(flushToDisk: true);  // the data must be durable before the rename makes it visible
            }
            File.Move(temp, target, overwrite: true);
        }
        catch (OperationCanceledException)
        {
            TryDelete(temp);   // cancelled part-way: nothing of this write stays, the previous file is unchanged
            throw;
        }
        catch (Exception ex)
        {
            TryDelete(temp);
            string why = IsDiskFull(ex) ? "the disk is full (no space left on device)" : ex.Message;
            throw new IOException($"Could not write '{target}' ({why}); any previous file there is unchanged.", ex);
        }
    }

    /// <summary>Test seam: wraps the stream of each write on this async flow (how the fault tests make a disk fill up or a save
    /// get cancelled part-way). Never set outside tests.</summary>
    internal static readonly AsyncLocal<Func<string, Stream, Stream>?> FaultInjection = new();

    static void TryDelete(string temp)
    {
        try { File.Delete(temp); }
        catch (IOException) { }  // best effort: the original error is the one worth reporting
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>ENOSPC (28) on Unix; ERROR_DISK_FULL (0x70) or ERROR_HANDLE_DISK_FULL (0x27) on Windows.</summary>
    internal static bool IsDiskFull(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is not IOException) continue;
            if (OperatingSystem.IsWindows() ? (e.HResult & 0xFFFF) is 0x70 or 0x27 : e.HResult == 28) return true;
        }
        return false;
    }
}
