namespace MLNet.MemoryTokens.Data;

/// <summary>The MNIST file naming: <c>{train|t10k}-images-idx3-ubyte[.gz]</c> beside <c>…-labels-idx1-ubyte[.gz]</c>.</summary>
internal static class IdxLayout
{
    /// <summary>The file-name prefix of a split: MNIST calls its test split "t10k".</summary>
    public static string Prefix(string split) => split == "test" ? "t10k" : split;

    /// <summary>The images file of <paramref name="split"/> ("train" or "test") in <paramref name="folder"/>, or null.</summary>
    public static string? FindImages(string folder, string split)
    {
        string prefix = Prefix(split);
        // "train-images.idx3-ubyte" (a dot) is how several mirrors of MNIST spell it.
        foreach (var stem in new[] { $"{prefix}-images-idx3-ubyte", $"{prefix}-images.idx3-ubyte" })
            foreach (var name in new[] { stem + ".gz", stem })
            {
                string images = Path.Combine(folder, name);
                if (File.Exists(images)) return images;
            }
        return null;
    }

    /// <summary>Whether a file name looks like part of an IDX set.</summary>
    public static bool LooksLikeIdx(string path)
    {
        string name = Path.GetFileName(path);
        return name.Contains("idx", StringComparison.OrdinalIgnoreCase) || name.Contains("ubyte", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The labels file for an images file (images→labels, idx3→idx1, gzipped or not); throws when absent.</summary>
    public static string LabelsBeside(string imagesPath)
    {
        string name = Path.GetFileName(imagesPath);
        if (name.Contains("labels", StringComparison.OrdinalIgnoreCase) || name.Contains("idx1", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{imagesPath} is a labels file; open the images file (…-images-idx3-ubyte) instead.", nameof(imagesPath));
        string labelsName = name.Replace("images", "labels", StringComparison.OrdinalIgnoreCase)
                                .Replace("idx3", "idx1", StringComparison.OrdinalIgnoreCase);
        if (labelsName == name)
            throw new ArgumentException($"Cannot tell the labels file of {imagesPath}: its name has neither 'images' nor 'idx3' to replace. " +
                                        "Use ImageDatasets.FromIdx(images, labels).", nameof(imagesPath));

        string dir = Path.GetDirectoryName(imagesPath) ?? "";
        string exact = Path.Combine(dir, labelsName);
        string other = labelsName.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? exact[..^3]
            : exact + ".gz";
        if (File.Exists(exact)) return exact;
        if (File.Exists(other)) return other;
        throw new FileNotFoundException($"Labels for {imagesPath} not found: expected {exact} (or {Path.GetFileName(other)}).", exact);
    }
}
