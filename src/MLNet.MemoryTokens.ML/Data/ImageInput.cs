using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.ML.Data;

/// <summary>What an image column holds.</summary>
internal enum ImageColumnKind
{
    /// <summary>An <see cref="MLImage"/> (LoadImages, or MLImage objects in LoadFromEnumerable), any size.</summary>
    Image,
    /// <summary>Text: an image file path, decoded with the engine's own decoder (JPEG, PNG, BMP, PPM/PGM).</summary>
    Path,
    /// <summary>Vector&lt;Single&gt; of 3·S·S planar RGB values in 0–255 (ExtractPixels with its defaults).</summary>
    FloatPixels,
    /// <summary>Vector&lt;Byte&gt; of 3·S·S planar RGB values (ExtractPixels with outputAsFloatArray: false).</summary>
    BytePixels,
}

/// <summary>The image column a component reads, and how one value of it becomes model input: the engine's training and
/// evaluation transform (resize to S×S with the backbone's interpolation, crop fraction 1, then per-channel mean/std), so
/// an ML.NET pipeline feeds exactly the pixels the engine's own API would.</summary>
internal sealed class ImageInput
{
    public ImageInput(string columnName, string? imageFolder, PreprocessConfig preprocess)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(columnName);
        ColumnName = columnName;
        ImageFolder = imageFolder;
        Preprocess = preprocess;
    }

    public string ColumnName { get; }
    /// <summary>Folder relative paths are resolved against (text columns only), as LoadImages' imageFolder.</summary>
    public string? ImageFolder { get; }
    /// <summary>Input size, crop fraction, interpolation, mean and std.</summary>
    public PreprocessConfig Preprocess { get; }
    public int Size => Preprocess.InputSize;
    public int PixelCount => 3 * Size * Size;

    public string ExpectedType => Size > 0
        ? $"MLImage, Text (an image path), or a Vector<Single> or Vector<Byte> of 3·{Size}·{Size} = {PixelCount} planar RGB values in 0–255 (ExtractPixels' default output)"
        : "MLImage, Text (an image path), or a Vector<Single> or Vector<Byte> of 3·S·S planar RGB values in 0–255 (ExtractPixels' default output at the backbone's input size S)";

    public static ImageColumnKind? KindOf(DataViewType type) => type switch
    {
        ImageDataViewType => ImageColumnKind.Image,
        TextDataViewType => ImageColumnKind.Path,
        VectorDataViewType v when v.ItemType == NumberDataViewType.Single => ImageColumnKind.FloatPixels,
        VectorDataViewType v when v.ItemType == NumberDataViewType.Byte => ImageColumnKind.BytePixels,
        _ => null,
    };

    /// <summary>Estimator-time check (a SchemaShape knows no vector sizes; those are checked by <see cref="Bind"/>).</summary>
    public void CheckShape(SchemaShape inputSchema)
    {
        var column = SchemaShapes.Find(inputSchema, ColumnName) ?? throw SchemaShapes.Missing(ColumnName, "image", ExpectedType);
        bool scalar = column.Kind == SchemaShape.Column.VectorKind.Scalar, vector = column.Kind == SchemaShape.Column.VectorKind.Vector;
        bool ok = !column.IsKey && (scalar && column.ItemType is ImageDataViewType or TextDataViewType
            || vector && (column.ItemType == NumberDataViewType.Single || column.ItemType == NumberDataViewType.Byte));
        if (!ok) throw SchemaShapes.Mismatch(ColumnName, "image", ExpectedType, SchemaShapes.Describe(column));
    }

    /// <summary>Transformer-time check: the column, its kind, and for pixel vectors the length 3·S·S.</summary>
    public (DataViewSchema.Column Column, ImageColumnKind Kind) Bind(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(ColumnName) ?? throw SchemaShapes.Missing(ColumnName, "image", ExpectedType);
        var kind = KindOf(column.Type) ?? throw SchemaShapes.Mismatch(ColumnName, "image", ExpectedType, column.Type.ToString() ?? "");
        if (kind is ImageColumnKind.FloatPixels or ImageColumnKind.BytePixels && ((VectorDataViewType)column.Type).Size != PixelCount)
            throw SchemaShapes.Mismatch(ColumnName, "image", ExpectedType,
                $"{column.Type} — this backbone runs at {Size}×{Size}; resize with ResizeImages({Size}, {Size}) before ExtractPixels");
        return (column, kind);
    }

    /// <summary>Normalised model input [3, S, S] of one value into <paramref name="dest"/>; false when the value is missing
    /// (null image, empty path).</summary>
    public bool ToModelInput(object? value, Span<float> dest)
    {
        var mean = Preprocess.Mean; var std = Preprocess.Std;
        int plane = Size * Size;
        switch (value)
        {
            case VBuffer<float> floats:
                CheckLength(floats.Length);
                floats.CopyTo(dest);
                // the same float32 expression the engine's lookup table evaluates for 8-bit values: (v / 255 − mean) / std
                for (int c = 0; c < 3; c++)
                    foreach (ref float v in dest.Slice(c * plane, plane)) v = (v / 255f - mean[c]) / std[c];
                return true;
            case VBuffer<byte> bytes:
                CheckLength(bytes.Length);
                var raw = bytes.DenseValues().ToArray();
                for (int c = 0; c < 3; c++)
                    for (int i = 0; i < plane; i++) dest[c * plane + i] = (raw[c * plane + i] / 255f - mean[c]) / std[c];
                return true;
            default:
                var image = Decode(value);
                if (image is null) return false;
                ImageTransforms.ToNormalizedChw(ToInputSize(image), mean, std, dest);
                return true;
        }
    }

    /// <summary>The 8-bit S×S image the engine trains on, or null for a missing value. Pixel vectors are rounded to bytes
    /// (they must lie in 0–255); <paramref name="rounded"/> tells whether any value was not already a whole number.</summary>
    public RgbImage? ToTrainingImage(object? value, string where, out bool rounded)
    {
        rounded = false;
        switch (value)
        {
            case VBuffer<float> floats:
                CheckLength(floats.Length);
                var chw = new float[PixelCount];
                floats.CopyTo(chw);
                var pixels = new byte[PixelCount];
                int plane = Size * Size;
                for (int c = 0; c < 3; c++)
                    for (int i = 0; i < plane; i++)
                    {
                        float v = chw[c * plane + i];
                        if (!(v >= 0f && v <= 255f))
                            throw new InvalidDataException($"{where}: pixel value {v} in column '{ColumnName}' is outside 0–255. Give 8-bit values (ExtractPixels with its default scale 1 and offset 0).");
                        float r = MathF.Round(v);
                        rounded |= r != v;
                        pixels[i * 3 + c] = (byte)r;
                    }
                return new RgbImage(Size, Size, pixels);
            case VBuffer<byte> bytes:
                CheckLength(bytes.Length);
                var planar = bytes.DenseValues().ToArray();
                var hwc = new byte[PixelCount];
                int n = Size * Size;
                for (int c = 0; c < 3; c++)
                    for (int i = 0; i < n; i++) hwc[i * 3 + c] = planar[c * n + i];
                return new RgbImage(Size, Size, hwc);
            default:
                var image = Decode(value);
                return image is null ? null : ToInputSize(image);
        }
    }

    /// <summary>An MLImage or a path decoded to 8-bit RGB (full size), or null when missing.</summary>
    public RgbImage? Decode(object? value) => value switch
    {
        null => null,
        MLImage image => FromMLImage(image),
        ReadOnlyMemory<char> path => path.Span.IsWhiteSpace() ? null : ImageDecoder.Load(ResolvePath(path.ToString())),
        _ => throw new InvalidOperationException($"Column '{ColumnName}' gave a {value.GetType().Name}; expected {ExpectedType}."),
    };

    public string ResolvePath(string path) => string.IsNullOrWhiteSpace(ImageFolder) ? path : System.IO.Path.Combine(ImageFolder, path);

    /// <summary>Resize to S×S as the engine prepares images (shorter side to ⌊S / crop⌋, centre crop; crop fraction 1 = whole image).</summary>
    public RgbImage ToInputSize(RgbImage image)
    {
        int scale = (int)Math.Floor(Size / Preprocess.CropFraction);
        return ImageTransforms.CenterCrop(ImageTransforms.ResizeShorterSide(image, scale, Preprocess.Interpolation), Size, Size);
    }

    /// <summary>RGB bytes of an MLImage (Bgra32 or Rgba32; alpha dropped, as PIL's convert("RGB")).</summary>
    public static RgbImage FromMLImage(MLImage image)
    {
        int w = image.Width, h = image.Height;
        var px = image.Pixels;
        (int r, int b) = image.PixelFormat switch
        {
            MLPixelFormat.Rgba32 => (0, 2),
            MLPixelFormat.Bgra32 => (2, 0),
            var f => throw new NotSupportedException($"MLImage pixel format {f} is not supported; expected Bgra32 or Rgba32."),
        };
        int stride = px.Length / h;   // rows may be padded
        if (stride < w * 4) throw new InvalidDataException($"MLImage of {w}x{h} has only {px.Length} pixel bytes.");
        var rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            var row = px.Slice(y * stride, w * 4);
            for (int x = 0, o = y * w * 3; x < w; x++, o += 3)
            {
                rgb[o] = row[x * 4 + r];
                rgb[o + 1] = row[x * 4 + 1];
                rgb[o + 2] = row[x * 4 + b];
            }
        }
        return new RgbImage(w, h, rgb);
    }

    void CheckLength(int length)
    {
        if (length != PixelCount)
            throw new InvalidDataException($"Column '{ColumnName}' holds {length} values; this backbone needs 3·{Size}·{Size} = {PixelCount}.");
    }
}
