using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Data;

/// <summary>A dataset decoded once and resized to the model's input, kept as 8-bit RGB [N, S, S, 3] with labels;
/// batches are normalised into [B, 3, S, S] on demand (a quarter of the memory of a float cache).</summary>
public sealed class PreparedImages
{
    public int Count => Labels.Length;
    public int Size { get; }
    public int[] Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    readonly byte[] _pixels;
    readonly PreprocessConfig _preprocess;

    PreparedImages(byte[] pixels, int[] labels, int size, IReadOnlyList<string> classes, PreprocessConfig preprocess, IReadOnlyList<string>? warnings = null)
    {
        _pixels = pixels; Labels = labels; Size = size; ClassNames = classes; _preprocess = preprocess; Warnings = warnings ?? [];
    }

    /// <summary>What decoding noticed but did not refuse, one line per image (a truncated JPEG decoded as libjpeg does).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Decodes and resizes every image (in parallel). Training and evaluation images are resized to the input size
    /// directly (crop fraction 1: the whole image, as the task data was collected) unless <paramref name="preprocess"/> says otherwise.</summary>
    public static PreparedImages From(IImageDataset dataset, PreprocessConfig preprocess, CancellationToken cancel = default)
    {
        int n = dataset.Count, s = preprocess.InputSize, plane = s * s * 3;
        if (n == 0) throw new ArgumentException("The dataset has no images.");
        Limits.Check("The image size", s, 1, Limits.MaxImageSize);
        if ((long)n * plane > Array.MaxLength)
            throw new LimitExceededException($"{n} images at {s}×{s} need {(long)n * plane:N0} bytes, more than one array holds ({Array.MaxLength:N0}): use fewer images (--limit) or a smaller image size.");
        var pixels = new byte[(long)n * plane];
        var labels = new int[n];
        // every bad image is named once, all of them together, rather than the run stopping at the first
        var failures = new System.Collections.Concurrent.ConcurrentBag<(int Index, string Message, Exception? Error)>();
        var warnings = new System.Collections.Concurrent.ConcurrentBag<(int Index, string Message)>();
        Parallelism.ForChunks(n, 16, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                cancel.ThrowIfCancellationRequested();
                labels[i] = dataset.LabelOf(i);
                if ((uint)labels[i] >= (uint)dataset.ClassNames.Count)
                {
                    failures.Add((i, $"{dataset.SourceOf(i)}: label {labels[i]} is outside the {dataset.ClassNames.Count} classes.", null));
                    continue;
                }
                RgbImage img;
                try { img = dataset.Load(i); }
                catch (ImageDecodeException e) { failures.Add((i, e.Message, e)); continue; }
                if (img.Warning is string warning) warnings.Add((i, $"{dataset.SourceOf(i)}: {warning}"));
                int scale = (int)Math.Floor(s / preprocess.CropFraction);
                var resized = ImageTransforms.CenterCrop(ImageTransforms.ResizeShorterSide(img, scale, preprocess.Interpolation), s, s);
                resized.Pixels.AsSpan(0, plane).CopyTo(pixels.AsSpan((int)((long)i * plane), plane));
            }
        });
        if (!failures.IsEmpty)
        {
            var sorted = failures.OrderBy(f => f.Index).ToList();
            if (sorted is [{ Error: { } only }]) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(only);   // one bad image: its own error
            const int Shown = 20;
            throw new InvalidDataException($"{sorted.Count} of {n} images could not be used; fix or remove them:" + Environment.NewLine +
                string.Join(Environment.NewLine, sorted.Take(Shown).Select(f => "  " + f.Message)) +
                (sorted.Count > Shown ? $"{Environment.NewLine}  … and {sorted.Count - Shown} more" : ""), sorted[0].Error);
        }
        return new PreparedImages(pixels, labels, s, dataset.ClassNames, preprocess, warnings.OrderBy(w => w.Index).Select(w => w.Message).ToArray());
    }

    /// <summary>SHA-256 of the prepared pixels, labels and normalisation (hex, first 32 digits): identifies the data a cache was built from.</summary>
    public string Fingerprint => _fingerprint ??= ComputeFingerprint();
    string? _fingerprint;

    string ComputeFingerprint()
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(_pixels);
        sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Labels.AsSpan()));
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{Size};{string.Join(',', _preprocess.Mean)};{string.Join(',', _preprocess.Std)}"));
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..32];
    }

    /// <summary>The normalised batch [B, 3, S, S] for these indices.</summary>
    public Tensor Batch(ReadOnlySpan<int> indices)
    {
        int s = Size, plane = s * s * 3;
        var x = new Tensor([indices.Length, 3, s, s]);
        var idx = indices.ToArray();
        Parallelism.For(0, idx.Length, b =>
        {
            var img = new RgbImage(s, s, _pixels.AsSpan((int)((long)idx[b] * plane), plane).ToArray());
            ImageTransforms.ToNormalizedChw(img, _preprocess.Mean, _preprocess.Std, x.Data.AsSpan(b * plane, plane));
        });
        return x;
    }

    /// <summary>A view of some images (for train/validation splits of an already prepared set).</summary>
    public PreparedImages Subset(IReadOnlyList<int> indices)
    {
        int plane = Size * Size * 3;
        var pixels = new byte[(long)indices.Count * plane];
        var labels = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            _pixels.AsSpan((int)((long)indices[i] * plane), plane).CopyTo(pixels.AsSpan((int)((long)i * plane), plane));
            labels[i] = Labels[indices[i]];
        }
        return new PreparedImages(pixels, labels, Size, ClassNames, _preprocess);
    }
}
