using System.IO.Compression;
using MLNet.MemoryTokens.Data;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

/// <summary>The shipped samples/data/fashion-mnist-2k: the README's training set.</summary>
public class FashionMnistSampleTests
{
    static readonly string Sample = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");
    const string Debian = "/usr/share/datasets/fashion-mnist";

    static readonly string[] Classes =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    [Fact]
    public void TrainSplitHas2000ImagesOfAllTenClasses()
    {
        var train = ImageDatasets.Open(Sample);
        Assert.Equal(2000, train.Count);
        Assert.Equal(Classes, train.ClassNames);
        // Counts of the first 2,000 training labels, as printed by reference/make_fashion_mnist_subset.py.
        Assert.Equal([194, 216, 202, 195, 186, 200, 194, 215, 198, 200], train.ClassCounts());

        var image = train.Load(0);
        Assert.Equal((28, 28), (image.Width, image.Height));
        Assert.Contains(image.Pixels, p => p > 0);
    }

    [Fact]
    public void TestSplitHas1000ImagesOfAllTenClasses()
    {
        var test = ImageDatasets.Open(Sample + ":test");
        Assert.Equal(1000, test.Count);
        Assert.Equal(Classes, test.ClassNames);
        Assert.Equal([107, 105, 111, 93, 115, 87, 97, 95, 95, 95], test.ClassCounts());
        Assert.EndsWith("t10k-images-idx3-ubyte.gz#999", test.SourceOf(999));
    }

    [Fact]
    public void ValidationSplitKeepsEachClassShare()
    {
        var train = ImageDatasets.Open(Sample);
        var (rest, validation) = train.SplitStratified(0.1, seed: 1);
        Assert.Equal(train.Count, rest.Count + validation.Count);
        var all = train.ClassCounts();
        var held = validation.ClassCounts();
        for (int c = 0; c < all.Length; c++)
            Assert.InRange(held[c], all[c] * 0.1 - 1, all[c] * 0.1 + 1);
    }

    [Fact]
    public void FilesAreGzippedReproducibly()
    {
        foreach (var name in new[] { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" })
        {
            var header = File.ReadAllBytes(Path.Combine(Sample, name))[..10];
            Assert.Equal([0x1F, 0x8B, 8, 0], header[..4]); // deflate, no flags (so no embedded file name)
            Assert.Equal([0, 0, 0, 0], header[4..8]);       // mtime 0
        }
    }

    [FactIfDirectoryExists(Debian, "Debian package dataset-fashion-mnist")]
    public void ImagesAndLabelsArePrefixesOfTheFullSet()
    {
        foreach (var (split, count) in new[] { ("train", 2000), ("t10k", 1000) })
        {
            var shipped = ImageDatasets.Open(Path.Combine(Sample, $"{split}-images-idx3-ubyte.gz"));
            byte[] images = ReadPrefix($"{split}-images-idx3-ubyte", 16 + count * 784);
            byte[] labels = ReadPrefix($"{split}-labels-idx1-ubyte", 8 + count);

            for (int i = 0; i < count; i++)
            {
                Assert.Equal(labels[8 + i], shipped.LabelOf(i));
                var gray = images.AsSpan(16 + i * 784, 784);
                var rgb = shipped.Load(i).Pixels;
                for (int p = 0; p < 784; p++)
                    if (rgb[3 * p] != gray[p] || rgb[3 * p + 1] != gray[p] || rgb[3 * p + 2] != gray[p])
                        Assert.Fail($"{split} image {i}, pixel {p}: shipped {rgb[3 * p]}, Debian {gray[p]}");
            }
        }
    }

    /// <summary>The first <paramref name="length"/> decompressed bytes of a Debian file (stored gzipped or not).</summary>
    static byte[] ReadPrefix(string name, int length)
    {
        string gz = Path.Combine(Debian, name + ".gz");
        using Stream stream = File.Exists(gz)
            ? new GZipStream(File.OpenRead(gz), CompressionMode.Decompress)
            : File.OpenRead(Path.Combine(Debian, name));
        var buffer = new byte[length];
        stream.ReadExactly(buffer);
        return buffer;
    }
}
