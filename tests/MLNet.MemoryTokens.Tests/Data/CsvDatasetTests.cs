using MLNet.MemoryTokens.Data;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

public class CsvDatasetTests
{
    [Fact]
    public void FixtureWithHeaderQuotesAndRelativePaths()
    {
        string csvDir = TestPaths.Fixture("data", "csv");
        var d = ImageDatasets.FromCsv(Path.Combine(csvDir, "labels.csv"));

        Assert.Equal(3, d.Count); // header and blank line skipped
        Assert.Equal(["bird", "cat"], d.ClassNames);
        Assert.Equal([0, 1, 1], d.Labels()); // " cat " is trimmed
        Assert.Equal(Path.Combine(csvDir, "images", "with,comma.ppm"), d.SourceOf(0));
        Assert.Equal(TestPaths.Fixture("data", "folder", "cat", "1.png"), d.SourceOf(1)); // "../" resolved against the CSV
        Assert.Equal([21, 22, 23], d.Load(0).Pixels);
        Assert.Equal([8, 9, 10], d.Load(1).Pixels[..3]);
        Assert.Equal([24, 24, 24], d.Load(2).Pixels);
    }

    [Fact]
    public void WithoutHeaderTheFirstRowIsData()
    {
        using var tmp = new TempDir();
        tmp.Write("a", TempDir.Ppm(1)); // extensionless, but it exists: data, not a header
        tmp.Write("b.ppm", TempDir.Ppm(2));
        var d = ImageDatasets.FromCsv(tmp.WriteText("list.csv", "a,dog\nb.ppm,cat\n"));
        Assert.Equal(2, d.Count);
        Assert.Equal(["cat", "dog"], d.ClassNames);
        Assert.Equal([1, 0], d.Labels());
    }

    [Fact]
    public void IntegerLabelsNameClassesZeroToMax()
    {
        using var tmp = new TempDir();
        tmp.Write("a.ppm", TempDir.Ppm(1));
        string absolute = tmp.Write("sub/b.ppm", TempDir.Ppm(2));
        var d = ImageDatasets.FromCsv(tmp.WriteText("list.csv", $"file,target\r\na.ppm,3\r\n{absolute},0\r\n"));
        Assert.Equal(["0", "1", "2", "3"], d.ClassNames);
        Assert.Equal([3, 0], d.Labels());
        Assert.Equal(absolute, d.SourceOf(1));
    }

    [Fact]
    public void GivenClassNamesAcceptNamesIndicesAndEscapedQuotes()
    {
        using var tmp = new TempDir();
        tmp.Write("a.ppm", TempDir.Ppm(1));
        tmp.Write("sub/b.ppm", TempDir.Ppm(2));
        string csv = tmp.WriteText("list.csv", "a.ppm,\"say \"\"hi\"\"\"\n  \"a.ppm\" , 0\nsub\\b.ppm,quiet\n");
        var d = ImageDatasets.FromCsv(csv, ["quiet", "say \"hi\""]);
        Assert.Equal([1, 0, 0], d.Labels());
        Assert.Equal(Path.GetFullPath(tmp.PathOf("sub/b.ppm")), d.SourceOf(2)); // a Windows-style separator still resolves
    }

    [Fact]
    public void BadLabelNamesCsvAndLine()
    {
        using var tmp = new TempDir();
        tmp.Write("a.ppm", TempDir.Ppm(1));
        string csv = tmp.WriteText("list.csv", "path,label\na.ppm,cat\na.ppm,zebra\n");
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(csv, ["cat", "dog"]));
        Assert.Contains($"{csv}, line 3: label 'zebra'", e.Message);

        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(csv, ["cat"]));
        Assert.Contains("line 3", e.Message);

        string outOfRange = tmp.WriteText("range.csv", "a.ppm,1\na.ppm,2\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(outOfRange, ["cat", "dog"]));
        Assert.Contains($"{outOfRange}, line 2: label '2'", e.Message);

        string mixed = tmp.WriteText("mixed.csv", "a.ppm,0\na.ppm,1\na.ppm,cat\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(mixed));
        Assert.Contains($"{mixed}, line 3: label 'cat' is a class name", e.Message);

        string negative = tmp.WriteText("negative.csv", "a.ppm,0\na.ppm,-1\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(negative));
        Assert.Contains($"{negative}, line 2:", e.Message);

        string empty = tmp.WriteText("empty-label.csv", "a.ppm,\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(empty));
        Assert.Contains($"{empty}, line 1: the label is empty", e.Message);
    }

    [Fact]
    public void MissingImageIsReportedAtOpenWithCsvAndLine()
    {
        using var tmp = new TempDir();
        tmp.Write("a.ppm", TempDir.Ppm(1));
        string csv = tmp.WriteText("list.csv", "path,label\na.ppm,cat\nimages/gone.png,dog\n");
        var e = Assert.Throws<FileNotFoundException>(() => ImageDatasets.FromCsv(csv));
        Assert.Contains($"{csv}, line 3: image file not found", e.Message);
        Assert.Equal(Path.GetFullPath(tmp.PathOf("images/gone.png")), e.FileName);

        // A missing image on the first row is still an image (it has an image extension), not a header.
        string first = tmp.WriteText("first.csv", "gone.jpg,cat\na.ppm,cat\n");
        e = Assert.Throws<FileNotFoundException>(() => ImageDatasets.FromCsv(first));
        Assert.Contains($"{first}, line 1:", e.Message);
    }

    [Fact]
    public void MalformedLinesNameCsvAndLine()
    {
        using var tmp = new TempDir();
        tmp.Write("a.ppm", TempDir.Ppm(1));

        string open = tmp.WriteText("open.csv", "a.ppm,cat\n\"a.ppm,cat\n");
        var e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(open));
        Assert.Contains($"{open}, line 2: the quote opened at column 1 is never closed", e.Message);

        string extra = tmp.WriteText("extra.csv", "a.ppm,cat,train\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(extra));
        Assert.Contains($"{extra}, line 1: expected 2 fields (path,label), found 3", e.Message);

        string junk = tmp.WriteText("junk.csv", "\"a.ppm\"x,cat\n");
        e = Assert.Throws<InvalidDataException>(() => ImageDatasets.FromCsv(junk));
        Assert.Contains($"{junk}, line 1: unexpected 'x' at column 8", e.Message);
    }

    [Fact]
    public void EmptyOrMissingCsvIsNamed()
    {
        using var tmp = new TempDir();
        string headerOnly = tmp.WriteText("header.csv", "path,label\n\n");
        var e = Assert.Throws<ArgumentException>(() => ImageDatasets.FromCsv(headerOnly));
        Assert.Contains(headerOnly, e.Message);

        string missing = tmp.PathOf("nope.csv");
        var notFound = Assert.Throws<FileNotFoundException>(() => ImageDatasets.FromCsv(missing));
        Assert.Equal(missing, notFound.FileName);
    }
}
