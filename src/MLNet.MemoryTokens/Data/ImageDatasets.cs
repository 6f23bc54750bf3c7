namespace MLNet.MemoryTokens.Data;

/// <summary>Opens labelled image collections (class folders, CSV lists, IDX files) and slices them.</summary>
/// <remarks>
/// Errors: a missing path is a <see cref="FileNotFoundException"/> or <see cref="DirectoryNotFoundException"/> naming it;
/// an empty dataset or class folder an <see cref="ArgumentException"/> naming it; malformed content an
/// <see cref="InvalidDataException"/> naming the file and its line (CSV, classes.txt) or byte offset (IDX). Everything is
/// checked at open — including that every image a CSV lists exists — so <see cref="IImageDataset.Load"/> can only fail
/// when an image file itself is unreadable or malformed (an <see cref="Imaging.ImageDecodeException"/>).
/// All datasets returned here are immutable and safe to <c>Load</c> from several threads.
/// </remarks>
public static class ImageDatasets
{
    /// <summary>
    /// A folder with one subfolder per class: class names are the subfolder names in ordinal order, images are the
    /// .jpg .jpeg .png .bmp .ppm .pgm .pnm files anywhere inside each (any case), in ordinal order of their relative path.
    /// Names starting with '.' are skipped.
    /// </summary>
    public static IImageDataset FromFolder(string root) => ImageFolder.Read(root);

    /// <summary>
    /// A CSV of <c>path,label</c> rows. The first row is taken as a header when its path field is neither an existing file
    /// nor has an image extension. Relative paths are resolved against the CSV's folder; quoted fields may hold commas.
    /// A label is a class name or an index into <paramref name="classNames"/>; without them, classes are the sorted
    /// distinct names, or "0".."max" when every label is an integer.
    /// </summary>
    public static IImageDataset FromCsv(string csvPath, IReadOnlyList<string>? classNames = null) =>
        CsvImageList.Read(csvPath, classNames);

    /// <summary>
    /// An IDX pair in the MNIST format: images <c>[N, H, W]</c> unsigned bytes (grayscale, replicated to RGB) and labels
    /// <c>[N]</c>. Either may be gzipped (detected by content). Class names: <paramref name="classNames"/>, else a
    /// classes.txt beside the images, else the digits "0".."9" (a label beyond 9 is then refused). Both files are read into memory.
    /// </summary>
    public static IImageDataset FromIdx(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(imagesPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(labelsPath);
        return new IdxDataset(imagesPath, labelsPath, classNames);
    }

    /// <summary>
    /// Opens whatever <paramref name="spec"/> is: a folder of class subfolders; a folder of IDX files (its train split:
    /// <c>train-images-idx3-ubyte[.gz]</c> + <c>train-labels-idx1-ubyte[.gz]</c>); a <c>.csv</c>; or an IDX images file
    /// (labels found beside it: images→labels, idx3→idx1). <c>"folder:test"</c> opens a folder's t10k IDX split, or its
    /// <c>test/</c> subfolder of class folders; <c>"folder:train"</c> likewise.
    /// </summary>
    public static IImageDataset Open(string spec) => DatasetSpec.Open(spec);

    /// <summary>The first <paramref name="count"/> images (all of them when there are fewer).</summary>
    public static IImageDataset Take(this IImageDataset dataset, int count)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return SubsetDataset.Create(dataset, Enumerable.Range(0, Math.Min(count, dataset.Count)).ToArray());
    }

    /// <summary>The images at <paramref name="indices"/>, in that order (repeats allowed); the list is copied.</summary>
    public static IImageDataset Subset(this IImageDataset dataset, IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(indices);
        return SubsetDataset.Create(dataset, indices);
    }

    /// <summary>
    /// Stratified split by label with a seeded shuffle: each class sends round(n × <paramref name="validationFraction"/>)
    /// of its images to validation. The same seed gives the same split on every machine and .NET version; both parts
    /// keep the dataset's order.
    /// </summary>
    public static (IImageDataset Train, IImageDataset Validation) SplitStratified(
        this IImageDataset dataset, double validationFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var (train, validation) = StratifiedSplit.Split(dataset, validationFraction, seed);
        return (SubsetDataset.Create(dataset, train), SubsetDataset.Create(dataset, validation));
    }

    /// <summary>Every label, in order.</summary>
    public static int[] Labels(this IImageDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var labels = new int[dataset.Count];
        for (int i = 0; i < labels.Length; i++) labels[i] = dataset.LabelOf(i);
        return labels;
    }

    /// <summary>How many images each class has, indexed by label.</summary>
    public static int[] ClassCounts(this IImageDataset dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var counts = new int[dataset.ClassNames.Count];
        for (int i = 0; i < dataset.Count; i++) counts[dataset.LabelOf(i)]++;
        return counts;
    }
}
