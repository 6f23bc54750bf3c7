namespace MLNet.MemoryTokens.IO;

/// <summary>Writes a folder as one unit (an adapter, a multi-task folder) and checks outputs before long work: the one
/// implementation the engine, the command line and the ML.NET layer share.</summary>
/// <remarks>
/// An existing folder is replaced only when it is empty or everything in it is ours (<see cref="FolderArtifact.Foreign"/>);
/// anything else is refused with an <see cref="OutputRefusedException"/> naming the folder and the entry, and nothing is
/// touched. A new folder is filled as a hidden sibling (<c>.name.mmt-new-…</c>) and renamed into place; an existing one of
/// ours is renamed aside (<c>.name.mmt-old-…</c>), the new one renamed in, and then only the files we recognise in the old
/// one are deleted. An empty folder is kept and filled file by file. A crash or a full disk therefore leaves the previous
/// folder or the new one at the name, never a mixture; it can leave a hidden <c>.mmt-new-</c> sibling, which holds only our files.
/// </remarks>
public static class AtomicFolder
{
    /// <summary>Throws an <see cref="OutputRefusedException"/> unless <paramref name="directory"/> can be written as
    /// <paramref name="kind"/>: it is absent, empty or ours, is not a file or a symbolic link, and both it (when present) and
    /// the folder it goes in accept a new file. Call before a long run, so that it cannot end in a refusal.</summary>
    public static string EnsureWritable(string directory, FolderArtifact kind, string what)
    {
        string full = FullPath(directory);
        CheckReplaceable(full, kind, what);
        Probe(NearestExisting(Path.GetDirectoryName(full)!, what, full), what, full);   // where the new folder is made and renamed
        if (Directory.Exists(full)) Probe(full, what, full);                          // where the old files are removed
        return full;
    }

    /// <summary>Writes <paramref name="directory"/> as one unit: <paramref name="fill"/> gets an empty folder to write every
    /// file into; it then replaces the target as the remarks describe. Returns a warning when the previous folder's files
    /// could not all be removed after the swap (the new folder is in place either way), else null.</summary>
    public static string? Write(string directory, FolderArtifact kind, string what, Action<string> fill)
    {
        string full = EnsureWritable(directory, kind, what);
        string parent = Path.GetDirectoryName(full)!, name = Path.GetFileName(full);
        try { Directory.CreateDirectory(parent); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Refused(full, what, $"its folder '{parent}' cannot be created ({e.Message})", e); }
        string staging = Path.Combine(parent, $".{name}.mmt-new-{Guid.NewGuid():N}"[..(name.Length + 18)]);
        bool existed = Directory.Exists(full), empty = existed && !Directory.EnumerateFileSystemEntries(full).Any();
        try
        {
            Directory.CreateDirectory(staging);
            fill(staging);
            if (!existed) { Directory.Move(staging, full); return null; }
            if (empty)
            {
                // keep the user's (empty) folder: move the entries in, the kind's first file last (an adapter's config,
                // which says the folder is complete)
                var entries = Directory.GetFileSystemEntries(staging)
                    .OrderByDescending(f => kind.Files.ToList().FindIndex(o => o.Name.IsMatch(Path.GetFileName(f))) is int i && i >= 0 ? i : int.MaxValue);
                foreach (var f in entries) MoveEntry(f, Path.Combine(full, Path.GetFileName(f)));
                Directory.Delete(staging);
                return null;
            }
            string old = Path.Combine(parent, $".{name}.mmt-old-{Guid.NewGuid():N}"[..(name.Length + 18)]);
            Directory.Move(full, old);
            try { Directory.Move(staging, full); }
            catch { Directory.Move(old, full); throw; }   // put the previous folder back before reporting
            try { return kind.DeleteOurs(old) ? null : $"The previous {what} was kept at '{old}': it held files we did not recognise."; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"The previous {what} could not be removed from '{old}' ({e.Message}); the new one is in place."; }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryRemoveStaging(staging, kind);
            if (e is OutputRefusedException) throw;
            var root = e;
            while (root.InnerException is { } inner) root = inner;
            string why = AtomicFile.IsDiskFull(e) ? "the disk is full (no space left on device)" : root.Message;
            throw new IOException($"Could not save the {what} to '{full}' ({why}); {(existed && !empty ? "the previous one there is unchanged" : "nothing was left there")}.", e);
        }
        catch
        {
            TryRemoveStaging(staging, kind);
            throw;
        }
    }

    static void MoveEntry(string from, string to)
    {
        if (Directory.Exists(from)) Directory.Move(from, to);
        else File.Move(from, to, overwrite: false);
    }

    static void TryRemoveStaging(string staging, FolderArtifact kind)
    {
        try { if (Directory.Exists(staging)) kind.DeleteOurs(staging); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }   // best effort: the original error matters
    }

    static string FullPath(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        string full = Path.GetFullPath(directory);
        string trimmed = Path.TrimEndingDirectorySeparator(full);
        if (Path.GetFileName(trimmed).Length == 0) throw new OutputRefusedException(full, $"Refusing to write into '{full}', the root of a file system: give a folder of its own.");
        return trimmed;
    }

    static void CheckReplaceable(string full, FolderArtifact kind, string what)
    {
        var info = new DirectoryInfo(full);
        if (info.LinkTarget is not null)
            throw Refused(full, what, $"it is a symbolic link (to '{info.LinkTarget}'); give the folder it points to, or a new name");
        if (File.Exists(full)) throw Refused(full, what, "it is a file, not a folder");
        if (!info.Exists) return;
        string? why;
        try { why = kind.Foreign(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Refused(full, what, $"its content cannot be listed ({e.Message})", e); }
        if (why is not null)
            throw Refused(full, what, $"{why}. Only an empty folder or {kind.Description} is ever replaced; choose a new or empty folder (or remove this one yourself)");
    }

    static string NearestExisting(string folder, string what, string target)
    {
        for (var d = folder; d is not null; d = Path.GetDirectoryName(d))
        {
            if (Directory.Exists(d)) return d;
            if (File.Exists(d)) throw Refused(target, what, $"'{d}' is a file, so no folder can be made below it");
        }
        throw Refused(target, what, "no folder above it exists");
    }

    /// <summary>Creates and deletes a hidden file in <paramref name="folder"/>: the one reliable test that we may write there
    /// (permissions, read-only mounts, immutable folders, quotas all show).</summary>
    internal static void Probe(string folder, string what, string target)
    {
        string probe = Path.Combine(folder, $".mmt-write-probe-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string why = AtomicFile.IsDiskFull(e) ? "the disk is full" : e.Message;
            throw Refused(target, what, $"'{folder}' cannot be written ({why})", e);
        }
    }

    static OutputRefusedException Refused(string path, string what, string why, Exception? inner = null) =>
        new(path, $"Refusing to write the {what} to '{path}': {why}.", inner);
}

/// <summary>Checks for single-file outputs (a features file, an ML.NET model zip, a cache file): the file is absent or ours,
/// and its folder accepts a new file. The write itself goes through <see cref="AtomicFile"/>.</summary>
public static class OwnedOutput
{
    /// <summary>Throws an <see cref="OutputRefusedException"/> unless <paramref name="path"/> can be written as <paramref name="kind"/>.</summary>
    public static string EnsureWritable(string path, FileArtifact kind, string what)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new OutputRefusedException(full, $"Refusing to write the {what} to '{full}': it is a folder.");
        if (new FileInfo(full).LinkTarget is string link)
            throw new OutputRefusedException(full, $"Refusing to write the {what} to '{full}': it is a symbolic link (to '{link}'); give the file it points to, or a new name.");
        if (File.Exists(full))
        {
            bool ours;
            try { ours = kind.WrittenByUs(full); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or CheckpointException or InvalidDataException) { ours = false; }
            if (!ours)
                throw new OutputRefusedException(full, $"Refusing to write the {what} to '{full}': a file is there that is not {kind.Description} written by MLNet.MemoryTokens. " +
                                                       "Choose another name (or remove it yourself).");
        }
        string parent = Path.GetDirectoryName(full)!;
        for (var d = parent; d is not null; d = Path.GetDirectoryName(d))
            if (Directory.Exists(d)) { AtomicFolder.Probe(d, what, full); break; }
        return full;
    }
}
