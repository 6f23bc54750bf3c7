using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Data;

public class FolderDatasetTests
{
    static readonly string Root = TestPaths.Fixture("data", "folder");

    [Fact]
    public void ClassesAreSortedSubfoldersAndImagesAreFoundRecursively()
    {
        var d = ImageDatasets.FromFolder(Root);

        // .cache/ (a hidden folder), ant/notes.txt and ant/._x.png (a macOS resource fork) are not data.
        Assert.Equal(["ant", "bird", "cat"], d.ClassNames);
        string[] expected = ["ant/x.PNG", "bird/a.bmp", "bird/b.pgm", "cat/1.png", "cat/sub/2.ppm"];
        Assert.Equal(expected.Select(e => Path.Combine(Root, e)), Enumerable.Range(0, d.Count).Select(d.SourceOf));
        Assert.Equal([0, 1, 1, 2, 2], d.Labels());

        // The first pixel of each fixture identifies it (see reference/make_data_fixtures.py).
        byte[][] firstPixels = [[1, 2, 3], [4, 5, 6], [7, 7, 7], [8, 9, 10], [11, 12, 13]];
        for (int i = 0; i < d.Count; i++)
            Assert.Equal(firstPixels[i], d.Load(i).Pixels[..3]);
    }

    [Fact]
    public void OrderIsOrdinalForClassesAndFiles()
    {
        using var tmp = new TempDir();
        foreach (var cls in new[] { "b", "a", "Z", "Y" }) tmp.Write($"{cls}/1.ppm", TempDir.Ppm(1));
        foreach (var (file, red) in new[] { ("2.ppm", 2), ("10.ppm", 10), ("1.ppm", 1) }) tmp.Write($"a/{file}", TempDir.Ppm((byte)red));

        var d = ImageDatasets.FromFolder(tmp.Root);
        Assert.Equal(["Y", "Z", "a", "b"], d.ClassNames); // culture order would be a, b, Y, Z
        var inA = Enumerable.Range(0, d.Count).Where(i => d.LabelOf(i) == 2).Select(i => d.Load(i).Pixels[0]);
        Assert.Equal([1, 10, 2], inA);
    }

    [Fact]
    public void ClassFolderWithoutImagesIsNamed()
    {
        using var tmp = new TempDir();
        tmp.Write("cat/1.ppm", TempDir.Ppm(1));
        tmp.WriteText("dog/readme.txt", "no pictures yet");
        var e = Assert.Throws<ArgumentException>(() => ImageDatasets.FromFolder(tmp.Root));
        Assert.Contains(tmp.PathOf("dog"), e.Message);

        using var empty = new TempDir();
        empty.Folder("cat");
        e = Assert.Throws<ArgumentException>(() => ImageDatasets.FromFolder(empty.Root));
        Assert.Contains(empty.PathOf("cat"), e.Message);
    }

    [Fact]
    public void FolderWithoutClassSubfoldersIsNamed()
    {
        using var tmp = new TempDir();
        tmp.Write("loose.ppm", TempDir.Ppm(1));
        var e = Assert.Throws<ArgumentException>(() => ImageDatasets.FromFolder(tmp.Root));
        Assert.Contains(tmp.Root, e.Message);
        Assert.Contains("no class subfolders", e.Message);

        e = Assert.Throws<ArgumentException>(() => ImageDatasets.FromFolder(TestPaths.Fixture("data", "idx")));
        Assert.Contains("IDX", e.Message);
    }

    [Fact]
    public void MissingFolderIsNamed()
    {
        string missing = Path.Combine(Root, "no-such-folder");
        var e = Assert.Throws<DirectoryNotFoundException>(() => ImageDatasets.FromFolder(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void UndecodableImageFailsOnLoadNamingItsSource()
    {
        using var tmp = new TempDir();
        tmp.Write("cat/good.ppm", TempDir.Ppm(1));
        string bad = tmp.WriteText("cat/junk.png", "this is not a PNG");
        var d = ImageDatasets.FromFolder(tmp.Root);

        int index = Enumerable.Range(0, d.Count).Single(i => d.SourceOf(i) == bad);
        var e = Assert.Throws<ImageDecodeException>(() => d.Load(index));
        Assert.Equal(bad, e.Source);
        Assert.Contains(bad, e.Message);
    }
}
