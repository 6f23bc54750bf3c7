using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

/// <summary>Parallel decoding overlapped with compute gives exactly what decoding one file after another gives: the same
/// pixels, the same batches, the same errors named by file; and it stops when asked.</summary>
public class ImageFileBatchesTests
{
    static readonly PreprocessConfig Eval = new() { InputSize = 32 };   // ViT's eval transform (crop 0.9, bicubic, 0.5/0.5), small

    /// <summary>The committed JPEG fixtures, repeated, with an undecodable file and a missing one among them.</summary>
    static (List<string> Files, TempDir Dir) Files(int repeat)
    {
        var dir = new TempDir();
        string garbage = dir.Write("garbage.jpg", [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x03, 0x01, 0x02, 0x03]);
        string missing = dir.PathOf("missing.jpg");
        var jpegs = Directory.GetFiles(TestPaths.Fixture("images"), "*.jpg").Order(StringComparer.Ordinal).ToList();
        var files = new List<string>();
        for (int k = 0; k < repeat; k++) files.AddRange(jpegs);
        files.Insert(5, garbage);
        files.Insert(17, missing);
        return (files, dir);
    }

    /// <summary>One file after another on this thread: the sequential path the batches must equal.</summary>
    static (float[]? Pixels, string? Error, string? Warning) Sequential(string file, PreprocessConfig p)
    {
        try
        {
            var image = ImageDecoder.Load(file);
            var x = new float[3 * p.InputSize * p.InputSize];
            ImageTransforms.Preprocess(image, p.InputSize, p.CropFraction, p.Interpolation, p.Mean, p.Std, x);
            return (x, null, image.Warning);
        }
        catch (Exception e) when (e is ImageDecodeException or IOException or UnauthorizedAccessException) { return (null, e.Message, null); }
    }

    [Theory]
    [InlineData(7, 1, 2)]
    [InlineData(4, 2, 3)]
    [InlineData(64, 3, 1)]
    public void BatchesEqualDecodingOneFileAfterAnother(int batchSize, int ahead, int threads)
    {
        var (files, dir) = Files(2);
        using var _ = dir;
        var expected = files.Select(f => Sequential(f, Eval)).ToList();
        Assert.Contains(expected, e => e.Error is not null && e.Error.Contains("garbage.jpg"));
        Assert.Contains(expected, e => e.Error is not null && e.Error.Contains("missing.jpg"));
        int plane = 3 * Eval.InputSize * Eval.InputSize, seen = 0;
        using var batches = new ImageFileBatches(files, Eval, batchSize, ahead, threads);
        foreach (var b in batches.Read())
        {
            Assert.Equal(seen, b.Start);
            Assert.Equal(Math.Min(batchSize, files.Count - seen), b.Files.Count);
            var ok = new List<int>();
            for (int j = 0; j < b.Files.Count; j++)
            {
                var e = expected[seen + j];
                Assert.Equal(files[seen + j], b.Files[j]);
                Assert.Equal(e.Error, b.Errors[j]);
                Assert.Equal(e.Warning, b.Warnings[j]);
                if (e.Error is null) ok.Add(j);
            }
            Assert.Equal(ok, b.Decoded);
            if (ok.Count == 0) Assert.Null(b.Images);
            else
            {
                Assert.Equal([ok.Count, 3, Eval.InputSize, Eval.InputSize], b.Images!.Shape);
                for (int j = 0; j < ok.Count; j++)
                    Assert.True(expected[seen + ok[j]].Pixels.AsSpan().SequenceEqual(b.Images.Data.AsSpan(j * plane, plane)), $"pixels of {b.Files[ok[j]]}");
            }
            seen += b.Files.Count;
        }
        Assert.Equal(files.Count, seen);
    }

    [Fact]
    public void ACancelledReadStopsWithoutHanging()
    {
        var (files, dir) = Files(20);
        using var _ = dir;
        using var cts = new CancellationTokenSource();
        using var batches = new ImageFileBatches(files, Eval, 4, ahead: 1, threads: 2, cancel: cts.Token);
        int read = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var b in batches.Read())
                if (++read == 2) cts.Cancel();
        });
        Assert.Equal(2, read);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30));
    }

    /// <summary>A data set over files, for the prepared (training/evaluation) path.</summary>
    sealed class FileList(IReadOnlyList<string> files) : IImageDataset
    {
        public int Count => files.Count;
        public IReadOnlyList<string> ClassNames { get; } = ["a", "b", "c"];
        public int LabelOf(int index) => index % 3;
        public string SourceOf(int index) => files[index];
        public RgbImage Load(int index) => ImageDecoder.Load(files[index]);
    }

    [Fact]
    public void StreamedPreparedImagesEqualSequentialAndInAnyBatchOrder()
    {
        var jpegs = Directory.GetFiles(TestPaths.Fixture("images"), "*.jpg").Order(StringComparer.Ordinal)
            .Where(f => Sequential(f, Eval).Error is null).ToList();
        var p = Eval with { CropFraction = 1 };
        var prepared = PreparedImages.Stream(new FileList(jpegs), p);
        int plane = 3 * p.InputSize * p.InputSize;
        // out of order and before decoding has finished: each batch waits for (and decodes) its own images
        int[] order = [.. Enumerable.Range(0, jpegs.Count).Reverse()];
        var x = prepared.Batch(order);
        for (int b = 0; b < order.Length; b++)
        {
            var expected = new float[plane];
            var image = ImageTransforms.ResizeCrop(ImageDecoder.Load(jpegs[order[b]]), p.InputSize, 1, p.Interpolation);
            ImageTransforms.ToNormalizedChw(image, p.Mean, p.Std, expected);
            Assert.True(expected.AsSpan().SequenceEqual(x.Data.AsSpan(b * plane, plane)), jpegs[order[b]]);
        }
        Assert.Equal(PreparedImages.From(new FileList(jpegs), p).Fingerprint, prepared.Fingerprint);
    }

    [Fact]
    public void ABadImageInAStreamedSetIsNamedByWhateverNeedsIt()
    {
        var (files, dir) = Files(1);
        using var _ = dir;
        files.RemoveAll(f => f.EndsWith("missing.jpg"));   // a data set's own listing has no missing files
        var prepared = PreparedImages.Stream(new FileList(files), Eval with { CropFraction = 1 });
        var e = Assert.ThrowsAny<Exception>(() => prepared.Complete());
        Assert.Contains("garbage.jpg", e.Message);
    }
}
