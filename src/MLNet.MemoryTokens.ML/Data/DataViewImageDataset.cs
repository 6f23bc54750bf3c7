using Microsoft.ML;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.ML.Hosting;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.ML.Scoring;

namespace MLNet.MemoryTokens.ML.Data;

/// <summary>The labelled rows of an <see cref="IDataView"/> as the engine's <see cref="IImageDataset"/>, in row order.</summary>
/// <remarks>The view is read once. Path rows stay paths (the engine decodes them in parallel when it prepares the set);
/// MLImage and pixel-vector rows are turned into S×S RGB while reading — the very resize the engine applies, so its own
/// resize of an S×S image is the identity and the pixels match the engine API's byte for byte. Rows with a missing label
/// (key 0) or a missing image are skipped with a warning, as ML.NET trainers skip missing labels.</remarks>
internal sealed class DataViewImageDataset : IImageDataset
{
    const int Block = 64;
    readonly RgbImage?[] _images;
    readonly string?[] _paths;
    readonly int[] _labels;
    readonly long[] _rows;
    readonly string _what;

    DataViewImageDataset(RgbImage?[] images, string?[] paths, int[] labels, long[] rows, IReadOnlyList<string> classes, string what)
    {
        _images = images; _paths = paths; _labels = labels; _rows = rows; ClassNames = classes; _what = what;
    }

    public int Count => _labels.Length;
    public IReadOnlyList<string> ClassNames { get; }
    public int LabelOf(int index) => _labels[index];
    public string SourceOf(int index) => _paths[index] ?? $"row {_rows[index]} of the {_what} data";
    public RgbImage Load(int index) => _images[index] ?? ImageDecoder.Load(_paths[index]!);

    /// <summary>Reads the image and label columns of <paramref name="data"/> (<paramref name="what"/> names it in messages).</summary>
    public static DataViewImageDataset Read(IDataView data, ImageInput input, string labelColumnName, LabelKeys keys, ComponentLog log, string what, CancellationToken cancel)
    {
        var (imageColumn, kind) = input.Bind(data.Schema);
        var labelColumn = data.Schema.GetColumnOrNull(labelColumnName) ?? throw SchemaShapes.Missing(labelColumnName, "label", SchemaShapes.KeyLabelType);
        if (labelColumn.Type is not Microsoft.ML.Data.KeyDataViewType key || key.RawType != typeof(uint) || (int)key.Count != keys.Count)
            throw SchemaShapes.Mismatch(labelColumnName, "label", $"Key<UInt32, 0-{keys.Count - 1}> (the training label's key type)", labelColumn.Type.ToString() ?? "");

        var images = new List<RgbImage?>(); var paths = new List<string?>(); var labels = new List<int>(); var rows = new List<long>();
        int missingLabels = 0, missingImages = 0; bool rounded = false;
        using (var cursor = data.GetRowCursor([imageColumn, labelColumn]))
        {
            var imageValues = ColumnCache.Create(cursor, imageColumn, Block);
            var labelGetter = cursor.GetGetter<uint>(labelColumn);
            var blockLabels = new int[Block]; var blockRows = new long[Block];
            var blockImages = new RgbImage?[Block]; var blockPaths = new string?[Block]; var blockRounded = new bool[Block];
            long row = -1;
            bool more = true;
            while (more)
            {
                int n = 0;
                while (n < Block && (more = cursor.MoveNext()))
                {
                    cancel.ThrowIfCancellationRequested();
                    row++;
                    uint label = 0;
                    labelGetter(ref label);
                    if (label == 0 || label > keys.Count) { missingLabels++; continue; }
                    imageValues.Capture(n);
                    blockLabels[n] = (int)label - 1; blockRows[n] = row;
                    n++;
                }
                // decode/resize a block in parallel; paths are only resolved (the engine decodes them when it prepares the set)
                ParallelRows.For(n, i =>
                {
                    var value = imageValues.Boxed(i);
                    blockPaths[i] = null; blockImages[i] = null; blockRounded[i] = false;
                    if (kind == ImageColumnKind.Path)
                    {
                        var path = (ReadOnlyMemory<char>)value!;
                        if (!path.Span.IsWhiteSpace()) blockPaths[i] = input.ResolvePath(path.ToString());
                    }
                    else blockImages[i] = input.ToTrainingImage(value, $"row {blockRows[i]} of the {what} data", out blockRounded[i]);
                });
                for (int i = 0; i < n; i++)
                {
                    if (blockImages[i] is null && blockPaths[i] is null) { missingImages++; continue; }
                    images.Add(blockImages[i]); paths.Add(blockPaths[i]); labels.Add(blockLabels[i]); rows.Add(blockRows[i]);
                    rounded |= blockRounded[i];
                }
            }
        }
        if (missingLabels > 0) log.Warning($"Skipped {missingLabels} {what} rows with a missing label (key 0).");
        if (missingImages > 0) log.Warning($"Skipped {missingImages} {what} rows with no image in column '{input.ColumnName}'.");
        if (rounded) log.Warning($"Column '{input.ColumnName}' holds non-integer pixel values; the engine trains on 8-bit pixels, so they were rounded.");
        if (labels.Count == 0) throw new ArgumentException($"The {what} data has no rows with both a label and an image.");
        return new DataViewImageDataset(images.ToArray(), paths.ToArray(), labels.ToArray(), rows.ToArray(), keys.ClassNames, what);
    }
}
