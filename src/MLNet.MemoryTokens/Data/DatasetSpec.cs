namespace MLNet.MemoryTokens.Data;

/// <summary>Resolves the dataset argument of <see cref="ImageDatasets.Open"/>: a folder, a CSV or an IDX file, with an optional <c>:train</c>/<c>:test</c>.</summary>
internal static class DatasetSpec
{
    static readonly string[] Splits = ["train", "test"];

    public static IImageDataset Open(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        var (path, split) = ParseSplit(spec);

        if (Directory.Exists(path)) return OpenFolder(path, split);
        if (File.Exists(path))
        {
            if (split is not null)
                throw new ArgumentException($"':{split}' picks a split of a folder, but {path} is a file.", nameof(spec));
            if (Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase))
                return CsvImageList.Read(path, classNames: null);
            if (IdxLayout.LooksLikeIdx(path))
                return new IdxDataset(path, IdxLayout.LabelsBeside(path), classNames: null);
            throw new ArgumentException($"Cannot open {path} as a dataset: expected a folder, a .csv file, or an IDX images file " +
                                        "(…-images-idx3-ubyte[.gz]).", nameof(spec));
        }
        throw new FileNotFoundException($"Dataset not found: {path}", path);
    }

    static IImageDataset OpenFolder(string folder, string? split)
    {
        // IDX files take precedence: a folder of them has no class subfolders, so there is nothing to confuse them with.
        if (IdxLayout.FindImages(folder, split ?? "train") is { } images)
            return new IdxDataset(images, IdxLayout.LabelsBeside(images), classNames: null);
        if (split is null) return ImageFolder.Read(folder);

        // The common photo layout keeps splits as sibling trees: root/train/<class>/…, root/test/<class>/…
        string subfolder = Path.Combine(folder, split);
        if (Directory.Exists(subfolder)) return ImageFolder.Read(subfolder);
        string prefix = IdxLayout.Prefix(split);
        throw new ArgumentException($"{folder} has no {split} split: expected {prefix}-images-idx3-ubyte[.gz] with its labels, " +
                                    $"or a '{split}' subfolder of class folders.", "spec");
    }

    /// <summary>Splits "path:test" into the path and the split; a path that exists as written is never split.</summary>
    static (string Path, string? Split) ParseSplit(string spec)
    {
        if (File.Exists(spec) || Directory.Exists(spec)) return (spec, null);
        int colon = spec.LastIndexOf(':');
        if (colon <= 0) return (spec, null);
        string suffix = spec[(colon + 1)..], path = spec[..colon];
        // "C:\data" or "C:/data" is a drive, not a split: only a bare word after the colon is one.
        if (suffix.Length == 0 || suffix.Any(c => c is '/' or '\\')) return (spec, null);
        string? split = Splits.FirstOrDefault(s => s.Equals(suffix, StringComparison.OrdinalIgnoreCase));
        if (split is null && (Directory.Exists(path) || File.Exists(path)))
            throw new ArgumentException($"Unknown split '{suffix}' in '{spec}': use :train or :test.", nameof(spec));
        return split is null ? (spec, null) : (path, split);
    }
}
