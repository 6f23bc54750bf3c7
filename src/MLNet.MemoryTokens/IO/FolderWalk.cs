namespace MLNet.MemoryTokens.IO;

/// <summary>Walks a folder tree for files. Symbolic links to folders are followed (a class folder may live elsewhere), but each
/// folder is entered once, recognised by device and inode (where the OS says; else by its fully resolved path): a link that
/// loops back (to a folder of the walk or above it) ends there instead of repeating its images until the path grows too long.</summary>
public static class FolderWalk
{
    /// <summary>Every file below <paramref name="root"/> (unsorted), with the folders of a loop skipped and reported to
    /// <paramref name="skipped"/>.</summary>
    public static List<string> Files(string root, Action<string>? skipped = null)
    {
        var files = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        // the folders above the root count as entered: a link up to one of them is a loop too (data/dog/up → data)
        for (var up = Path.GetDirectoryName(Path.GetFullPath(root)); up is not null; up = Path.GetDirectoryName(up))
            if (Directory.Exists(up)) seen.Add(Identity(up));
        var pending = new Stack<string>();
        if (Enter(root, seen)) pending.Push(root);
        var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false, ReturnSpecialDirectories = false };
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var entry in Directory.EnumerateFileSystemEntries(dir, "*", options))
            {
                if (Directory.Exists(entry))   // a folder, or a link to one
                {
                    if (Enter(entry, seen)) pending.Push(entry);
                    else skipped?.Invoke(entry);
                }
                else if (File.Exists(entry)) files.Add(entry);   // dangling links are not files
            }
        }
        return files;
    }

    static bool Enter(string dir, HashSet<string> seen) => seen.Add(Identity(dir));

    static string Identity(string dir)
    {
        if (InputFile.Identity(dir) is var (device, inode)) return $"{device}:{inode}";
        // no statx: resolve every link on the way to the folder itself
        var info = new DirectoryInfo(dir);
        var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? info.FullName;
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
    }
}
