namespace MLNet.MemoryTokens.Data;

/// <summary>Reads the "one subfolder per class" layout into a <see cref="FileListDataset"/>.</summary>
internal static class ImageFolder
{
    /// <summary>Extensions picked up inside class folders (case-insensitive); anything else is ignored.</summary>
    public static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm"];

    static readonly StringComparer Order = StringComparer.Ordinal;

    public static FileListDataset Read(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        if (!Directory.Exists(root))
        {
            if (File.Exists(root)) throw new ArgumentException($"{root} is a file; FromFolder needs a folder with one subfolder per class.", nameof(root));
            throw new DirectoryNotFoundException($"Dataset folder not found: {root}");
        }
        string full = Path.GetFullPath(root);

        // Ordinal, not culture, order: the label numbering must be the same on every machine that opens the folder.
        var classDirs = Directory.GetDirectories(full).Where(d => !IsHidden(Path.GetFileName(d))).Order(Order).ToArray();
        if (classDirs.Length == 0)
        {
            string hint = (IdxLayout.FindImages(full, "train") ?? IdxLayout.FindImages(full, "test")) is not null
                ? " It holds IDX files: open it with ImageDatasets.Open, or FromIdx."
                : "";
            throw new ArgumentException($"{root} has no class subfolders (expected one folder per class holding its images).{hint}", nameof(root));
        }

        var paths = new List<string>();
        var labels = new List<int>();
        var classNames = new string[classDirs.Length];
        for (int label = 0; label < classDirs.Length; label++)
        {
            classNames[label] = Path.GetFileName(classDirs[label]);
            var files = ImagesUnder(classDirs[label]);
            if (files.Count == 0)
                throw new ArgumentException(
                    $"Class folder {classDirs[label]} holds no images ({string.Join(" ", Extensions)}).", nameof(root));
            paths.AddRange(files);
            labels.AddRange(Enumerable.Repeat(label, files.Count));
        }
        return new FileListDataset($"folder {full}", [.. paths], [.. labels], classNames);
    }

    /// <summary>Image files anywhere below <paramref name="dir"/>, sorted by their path relative to it.</summary>
    static List<string> ImagesUnder(string dir)
    {
        // Every folder entered once (a symlink loop ends, never repeats images); dot-names are filtered by hand below.
        var found = new List<(string Key, string Path)>();
        foreach (var path in IO.FolderWalk.Files(dir))
        {
            if (!Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase)) continue;
            string relative = Path.GetRelativePath(dir, path).Replace('\\', '/');
            // Dot-names are tool droppings (macOS "._x.jpg" resource forks, .ipynb_checkpoints, .cache), not data.
            if (relative.Split('/').Any(IsHidden)) continue;
            found.Add((relative, path));
        }
        found.Sort((a, b) => Order.Compare(a.Key, b.Key));
        return found.ConvertAll(f => f.Path);
    }

    static bool IsHidden(string name) => name.StartsWith('.');
}
