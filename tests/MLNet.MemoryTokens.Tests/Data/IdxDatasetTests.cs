using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

public class IdxDatasetTests
{
    static string Fixture(string name) => TestPaths.Fixture("data", "idx", name);

    static void AssertGrayImage(RgbImage image, Func<int, int, int> expected)
    {
        Assert.Equal((3, 2), (image.Width, image.Height));
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
            {
                byte v = (byte)expected(y, x);
                Assert.Equal([v, v, v], image.PixelAt(x, y).ToArray());
            }
    }

    [Fact]
    public void RawFilesGiveExactPixelsLabelsAndClassesTxt()
    {
        var images = Fixture("train-images-idx3-ubyte");
        var d = ImageDatasets.FromIdx(images, Fixture("train-labels-idx1-ubyte"));

        Assert.Equal(3, d.Count);
        Assert.Equal(["alpha", "beta", "gamma"], d.ClassNames);
        Assert.Equal([2, 0, 1], d.Labels());
        Assert.Equal(images + "#1", d.SourceOf(1));
        for (int i = 0; i < 3; i++)
            AssertGrayImage(d.Load(i), (y, x) => 100 * i + 10 * y + x);
    }

    [Fact]
    public void GzippedFilesAreDetectedByContent()
    {
        var d = ImageDatasets.FromIdx(Fixture("t10k-images-idx3-ubyte.gz"), Fixture("t10k-labels-idx1-ubyte.gz"));

        Assert.Equal(2, d.Count);
        Assert.Equal([1, 2], d.Labels());
        for (int i = 0; i < 2; i++)
            AssertGrayImage(d.Load(i), (y, x) => 255 - (100 * i + 10 * y + x));

        // The magic bytes decide, not the name: a gzip stream without .gz (and raw bytes with it) read the same.
        using var tmp = new TempDir();
        var renamed = ImageDatasets.FromIdx(
            tmp.Write("images", File.ReadAllBytes(Fixture("t10k-images-idx3-ubyte.gz"))),
            tmp.Write("labels.gz", IdxBytes.Labels(1, 2)));
        Assert.Equal(d.Load(1).Pixels, renamed.Load(1).Pixels);
    }

    [Fact]
    public void ClassNamesDefaultToDigitsAndCanBeGiven()
    {
        using var tmp = new TempDir(); // no classes.txt here
        var images = tmp.Write("i", File.ReadAllBytes(Fixture("train-images-idx3-ubyte")));
        var labels = tmp.Write("l", File.ReadAllBytes(Fixture("train-labels-idx1-ubyte")));

        Assert.Equal(Enumerable.Range(0, 10).Select(i => i.ToString()), ImageDatasets.FromIdx(images, labels).ClassNames);
        Assert.Equal(["x", "y", "z"], ImageDatasets.FromIdx(images, labels, ["x", "y", "z"]).ClassNames);

        // a label beyond the digits no longer widens the head silently: it needs its classes named
        var wide = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(tmp.Write("i12", IdxBytes.Images(1, 1, 1, (_, _, _) => 0)), tmp.Write("l12", IdxBytes.Labels(12))));
        Assert.Contains("label 12 of image 0", wide.Message);
    }

    [Fact]
    public void ClassesTxtProblemsNameItsPathAndLine()
    {
        using var tmp = new TempDir();
        var images = tmp.Write("i", File.ReadAllBytes(Fixture("train-images-idx3-ubyte")));
        var labels = tmp.Write("l", File.ReadAllBytes(Fixture("train-labels-idx1-ubyte"))); // labels 2, 0, 1
        var classes = tmp.WriteText("classes.txt", "cat\r\n\r\ndog\r\ncat\r\n");
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(images, labels));
        Assert.Contains($"{classes}, line 4: class 'cat' already appears on line 1", e.Message);

        tmp.WriteText("classes.txt", "cat\ndog\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(images, labels));
        Assert.Contains($"{labels}, byte 8: label 2 of image 0 is beyond the 2 class names in {classes}", e.Message);
    }

    [Fact]
    public void LabelOutsideTheClassNamesNamesTheLabelsFileAndOffset()
    {
        var labels = Fixture("train-labels-idx1-ubyte"); // labels 2, 0, 1
        var e = Assert.Throws<InvalidDataException>(
            () => ImageDatasets.FromIdx(Fixture("train-images-idx3-ubyte"), labels, ["only", "two"]));
        Assert.Contains($"{labels}, byte 8:", e.Message);
        Assert.Contains("label 2 of image 0", e.Message);
    }

    [Fact]
    public void WrongMagicNamesFileAndOffsetZero()
    {
        using var tmp = new TempDir();
        var images = tmp.Write("images", IdxBytes.Images(3, 2, 3, (_, _, _) => 0));
        var labels = tmp.Write("labels", IdxBytes.Labels(0, 1, 2));

        // Arguments swapped: each file is the other kind.
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(labels, images));
        Assert.Contains($"{labels}, byte 0: wrong magic number 00000801, expected 00000803", e.Message);
        Assert.Contains("labels (idx1) file", e.Message);

        var png = tmp.Write("photo", File.ReadAllBytes(TestPaths.Fixture("data", "folder", "cat", "1.png")));
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(png, labels));
        Assert.Contains($"{png}, byte 0:", e.Message);
        Assert.Contains("not an IDX file", e.Message);

        var floats = IdxBytes.Images(1, 1, 1, (_, _, _) => 0);
        floats[2] = 0x0D;
        var gz = tmp.Write("floats.gz", TempDir.Gzip(floats));
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(gz, labels));
        Assert.Contains($"{gz}, byte 0 (after gunzip):", e.Message);
        Assert.Contains("element type 0x0D", e.Message);
    }

    [Fact]
    public void TruncationNamesFileAndTheOffsetWhereItEnds()
    {
        using var tmp = new TempDir();
        var labels = tmp.Write("labels", IdxBytes.Labels(0, 1, 2));
        var whole = IdxBytes.Images(3, 2, 3, (_, _, _) => 7); // 16 + 18 bytes

        var cut = tmp.Write("cut", whole[..^1]);
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(cut, labels));
        Assert.Contains($"{cut}, byte 33: truncated", e.Message);
        Assert.Contains("only 2 of the 3 items are complete", e.Message);

        var header = tmp.Write("header", whole[..10]);
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(header, labels));
        Assert.Contains($"{header}, byte 10: truncated", e.Message);

        var tiny = tmp.Write("tiny", whole[..3]);
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(tiny, labels));
        Assert.Contains($"{tiny}, byte 3: truncated", e.Message);

        var longer = tmp.Write("longer", [.. whole, 0, 0]);
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(longer, labels));
        Assert.Contains($"{longer}, byte 34: 2 unexpected bytes", e.Message);

        var shortLabels = tmp.Write("short-labels.gz", TempDir.Gzip(IdxBytes.Labels(0, 1, 2)[..^1]));
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(tmp.Write("ok", whole), shortLabels));
        Assert.Contains($"{shortLabels}, byte 10 (after gunzip): truncated", e.Message);
    }

    [Fact]
    public void CountMismatchNamesBothFilesAndTheCountOffset()
    {
        using var tmp = new TempDir();
        var images = tmp.Write("images", IdxBytes.Images(3, 2, 3, (_, _, _) => 0));
        var labels = tmp.Write("labels", IdxBytes.Labels(0, 1));
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(images, labels));
        Assert.Contains($"{labels}, byte 4: 2 labels, but {images} holds 3 images", e.Message);
    }

    [Fact]
    public void DamagedGzipStreamNamesTheFile()
    {
        using var tmp = new TempDir();
        var labels = tmp.Write("labels", IdxBytes.Labels(0));
        var gz = TempDir.Gzip(IdxBytes.Images(1, 28, 28, (_, y, x) => x * y));
        var halved = tmp.Write("halved.gz", gz[..(gz.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(halved, labels));
        Assert.Contains(halved, e.Message);

        gz[12] ^= 0xFF; // inside the deflate stream
        var flipped = tmp.Write("flipped.gz", gz);
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromIdx(flipped, labels));
        Assert.Contains(flipped, e.Message);
    }

    [Fact]
    public void MissingAndEmptyFilesAreNamed()
    {
        using var tmp = new TempDir();
        var labels = tmp.Write("labels", IdxBytes.Labels());
        var missing = tmp.PathOf("nope-images-idx3-ubyte");
        var notFound = Assert.Throws<FileNotFoundException>(() => ImageDatasets.FromIdx(missing, labels));
        Assert.Equal(missing, notFound.FileName);
        Assert.Contains(missing, notFound.Message);

        var empty = tmp.Write("empty", IdxBytes.Images(0, 28, 28, (_, _, _) => 0));
        var e = Assert.Throws<ArgumentException>(() => ImageDatasets.FromIdx(empty, labels));
        Assert.Contains(empty, e.Message);
    }

    [Fact]
    public void LoadIsSafeInParallel()
    {
        var d = ImageDatasets.FromIdx(Fixture("train-images-idx3-ubyte"), Fixture("train-labels-idx1-ubyte"));
        var sequential = Enumerable.Range(0, 300).Select(i => d.Load(i % 3).Pixels).ToArray();
        var parallel = new byte[300][];
        Parallel.For(0, 300, i => parallel[i] = d.Load(i % 3).Pixels);
        Assert.Equal(sequential, parallel);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Load(3));
    }
}
