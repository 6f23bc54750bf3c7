// Fine-tune a pretrained Vision Transformer on your images with memory tokens, as an ML.NET pipeline; evaluate it on
// held-out images and save it as one zip (and, with --adapter-out, the adapter folder that mmt and multitask-serving.cs read).
//
//   dotnet run -c Release samples/fine-tune.cs -- [--data <dataset>] [--test <dataset>] [--model <checkpoint or timm id>]
//       [--image-size 112] [--tokens 5] [--epochs 5] [--lr 0.001] [--limit N] [--masked] [--out model.zip] [--adapter-out dir]
//
// <dataset>: a folder with one subfolder per class, a CSV of path,label, or IDX files (folder:test for the test split).
// Default: the Fashion-MNIST excerpt in samples/data (2,000 train / 1,000 test images). The checkpoint: --model, else
// shared/models beside the repository when present, else the timm id vit_tiny_patch16_224.augreg_in21k_ft_in1k (downloaded once).
// Outside this repository, replace the #:project line with: #:package MLNet.MemoryTokens.ML@0.1.0
#:project ../src/MLNet.MemoryTokens.ML/MLNet.MemoryTokens.ML.csproj
#:package Microsoft.ML@6.0.0
#:property ManagePackageVersionsCentrally=false
#:property PublishAot=false

using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.ML;

const string Usage = "usage: dotnet run samples/fine-tune.cs -- [--data <dataset>] [--test <dataset>] [--model <checkpoint or id>] [--image-size n] [--tokens m] [--epochs n] [--lr x] [--limit n] [--masked] [--out model.zip] [--adapter-out dir]";
Dictionary<string, string> o;
try { o = Options(args, flags: ["--masked"]); }
catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}\n{Usage}"); return 2; }
if (o.ContainsKey("--help")) { Console.WriteLine(Usage); return 0; }

string scratch = Directory.CreateTempSubdirectory("fine-tune-").FullName;   // ours: removed at the end
try
{
    string data = o.GetValueOrDefault("--data") ?? SampleData();
    var train = ImageDatasets.Open(data);
    var test = ImageDatasets.Open(o.GetValueOrDefault("--test") ?? data + ":test");
    if (o.TryGetValue("--limit", out var limit)) { train = train.Take(Int(limit)); test = test.Take(Int(limit)); }
    string model = o.GetValueOrDefault("--model") ?? DefaultModel();
    int imageSize = Int(o.GetValueOrDefault("--image-size") ?? "112");
    Console.WriteLine($"data      {data}: {train.Count} training / {test.Count} test images, {train.ClassNames.Count} classes");
    Console.WriteLine($"backbone  {model} at {imageSize}×{imageSize}");

    var ml = new MLContext(seed: 0);
    ml.Log += (_, e) => { if (e.Kind >= ChannelMessageKind.Info && e.Source.StartsWith("MLNet.MemoryTokens", StringComparison.Ordinal)) Console.WriteLine($"  {e.RawMessage}"); };
    var trainView = ml.Data.LoadFromEnumerable(Rows(train, Directory.CreateDirectory(Path.Combine(scratch, "train")).FullName));
    var testView = ml.Data.LoadFromEnumerable(Rows(test, Directory.CreateDirectory(Path.Combine(scratch, "test")).FullName));

    // Label → key in the data set's class order; memory tokens; key → label.
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(train.ClassNames.Select(c => new ClassRow { Label = c })))
        .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
        {
            ImageColumnName = "ImagePath",
            BackbonePath = model,
            ImageSize = imageSize,
            MemoryTokens = Int(o.GetValueOrDefault("--tokens") ?? "5"),
            Masked = o.ContainsKey("--masked"),   // attention-masked: the task can later be served beside others in one pass
            Epochs = Int(o.GetValueOrDefault("--epochs") ?? "5"),
            LearningRate = float.Parse(o.GetValueOrDefault("--lr") ?? "0.001", CultureInfo.InvariantCulture),
            Seed = 0,
        }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    var fitted = pipeline.Fit(trainView);

    var metrics = ml.MulticlassClassification.Evaluate(fitted.Transform(testView));
    Console.WriteLine($"test accuracy {metrics.MicroAccuracy:F4} ({Math.Round(metrics.MicroAccuracy * test.Count)}/{test.Count}), macro accuracy {metrics.MacroAccuracy:F4}, log-loss {metrics.LogLoss:F4}");

    string zip = Path.GetFullPath(o.GetValueOrDefault("--out") ?? "fine-tuned.zip");
    ml.Model.SaveWithAdapters(fitted, trainView.Schema, zip);
    Console.WriteLine($"saved     {zip} ({new FileInfo(zip).Length / 1024} KB; evaluate it with samples/evaluate.cs --model-zip {Path.GetFileName(zip)})");
    if (o.TryGetValue("--adapter-out", out var adapterDir))
    {
        fitted.OfType<VitClassifierTransformer>().Single().SaveAdapter(adapterDir);
        Console.WriteLine($"adapter   {Path.GetFullPath(adapterDir)}");
    }
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or FormatException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
finally
{
    Directory.Delete(scratch, recursive: true);
}

// A data set as ML.NET rows of (ImagePath, Label), the trainer decoding the files itself. Image files are used where they
// are; images that are not files of their own (IDX) are written into `scratch` as PPM first.
static List<ImageRow> Rows(IImageDataset d, string scratch) => Enumerable.Range(0, d.Count).Select(i =>
{
    string path = d.SourceOf(i);
    if (!File.Exists(path))
    {
        var image = d.Load(i);
        path = Path.Combine(scratch, $"{Path.GetFileName(scratch)}-{i}.ppm");
        File.WriteAllBytes(path, [.. System.Text.Encoding.ASCII.GetBytes($"P6\n{image.Width} {image.Height}\n255\n"), .. image.Pixels]);
    }
    return new ImageRow { ImagePath = path, Label = d.ClassNames[d.LabelOf(i)] };
}).ToList();

static string SampleData() => Path.Combine((string)AppContext.GetData("EntryPointFileDirectoryPath")!, "data", "fashion-mnist-2k");

// shared/models/<ViT-Ti> in a folder above this file (beside the repository), else the timm id (downloaded once)
static string DefaultModel()
{
    const string id = "vit_tiny_patch16_224.augreg_in21k_ft_in1k";
    for (var dir = new DirectoryInfo((string)AppContext.GetData("EntryPointFileDirectoryPath")!); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "shared", "models", id + ".safetensors"))) return Path.Combine(dir.FullName, "shared", "models", id + ".safetensors");
    return id;
}

static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

static Dictionary<string, string> Options(string[] args, string[] flags)
{
    var o = new Dictionary<string, string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i] is "-h" or "--help") o["--help"] = "";
        else if (flags.Contains(args[i])) o[args[i]] = "";
        else if (args[i].StartsWith("--") && i + 1 < args.Length) o[args[i]] = args[++i];
        else throw new ArgumentException($"unexpected argument '{args[i]}'");
    }
    return o;
}

class ImageRow
{
    public string ImagePath { get; set; } = "";
    public string Label { get; set; } = "";
}

class ClassRow { public string Label { get; set; } = ""; }
