using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;

namespace FashionMnistMlNet;

/// <summary>Finding the data and checkpoint, and turning the engine's datasets into ML.NET rows: the very same images,
/// in the same order, as in-memory MLImage values (what LoadImages would produce from files).</summary>
static class SampleData
{
    public const string ModelFile = "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors";
    const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    public sealed class FashionRow
    {
        [ImageType(28, 28)] public MLImage? Image { get; set; }
        public string Label { get; set; } = "";
    }

    public sealed class ClassRow { public string Label { get; set; } = ""; }

    public static (IImageDataset Train, IImageDataset Test, string Source) Open(SampleArguments a)
    {
        string Sample() => Path.Combine(RepoRoot() ?? throw new DirectoryNotFoundException("Run the sample inside the repository (no MLNet.MemoryTokens.sln above the current folder), or pass --data."),
            "samples", "data", "fashion-mnist-2k");
        IImageDataset train, test;
        string source;
        if (a.Full)
        {
            var classes = RepoRoot() is string root ? Path.Combine(root, "samples", "data", "fashion-mnist-2k", "classes.txt") : "";
            IReadOnlyList<string>? names = File.Exists(classes) ? ClassNames(classes) : null;
            train = ImageDatasets.FromIdx(Path.Combine(DebianFolder, "train-images-idx3-ubyte.gz"), Path.Combine(DebianFolder, "train-labels-idx1-ubyte.gz"), names);
            test = ImageDatasets.FromIdx(Path.Combine(DebianFolder, "t10k-images-idx3-ubyte.gz"), Path.Combine(DebianFolder, "t10k-labels-idx1-ubyte.gz"), names);
            source = DebianFolder;
        }
        else
        {
            source = a.Data ?? Sample();
            train = ImageDatasets.Open(source);
            test = ImageDatasets.Open(source + ":test");
        }
        if (a.TrainLimit is int n) train = train.Take(n);
        if (a.TestLimit is int m) test = test.Take(m);
        return (train, test, source);
    }

    /// <summary>The checkpoint: the argument, else the ViT-Ti file in the nearest shared/models above the repo
    /// (../shared/models next to a checkout), else its timm id (downloaded into the model cache).</summary>
    public static string Model(SampleArguments a)
    {
        if (a.Model is not null) return a.Model;
        for (var dir = RepoRoot() is string root ? new DirectoryInfo(root).Parent : null; dir is not null; dir = dir.Parent)
        {
            var shared = Path.Combine(dir.FullName, "shared", "models", ModelFile);
            if (File.Exists(shared)) return shared;
        }
        return Path.GetFileNameWithoutExtension(ModelFile);
    }

    /// <summary>Row i of the view is image i of the dataset, 28×28 gray replicated to RGB exactly as the engine loads it.</summary>
    public static IDataView ToDataView(MLContext ml, IImageDataset dataset) =>
        ml.Data.LoadFromEnumerable(Enumerable.Range(0, dataset.Count).Select(i => ToRow(dataset, i)).ToList());

    public static FashionRow ToRow(IImageDataset dataset, int index) => new()
    {
        Image = ToMLImage(dataset.Load(index)),
        Label = dataset.ClassNames[dataset.LabelOf(index)],
    };

    /// <summary>The class names in the dataset's order, as MapValueToKey's key data: key k is class k − 1, as in the engine.</summary>
    public static IDataView ClassOrder(MLContext ml, IImageDataset dataset) =>
        ml.Data.LoadFromEnumerable(dataset.ClassNames.Select(c => new ClassRow { Label = c }));

    static MLImage ToMLImage(RgbImage image)
    {
        var bgra = new byte[image.Width * image.Height * 4];
        for (int p = 0; p < image.Width * image.Height; p++)
        {
            bgra[4 * p] = image.Pixels[3 * p + 2];
            bgra[4 * p + 1] = image.Pixels[3 * p + 1];
            bgra[4 * p + 2] = image.Pixels[3 * p];
            bgra[4 * p + 3] = 255;
        }
        return MLImage.CreateFromPixels(image.Width, image.Height, MLPixelFormat.Bgra32, bgra);
    }

    static string[] ClassNames(string path) => File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();

    /// <summary>The repository root: the first folder upwards (from here or the binary) holding MLNet.MemoryTokens.sln.</summary>
    static string? RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "MLNet.MemoryTokens.sln"))) return dir.FullName;
        return null;
    }
}
