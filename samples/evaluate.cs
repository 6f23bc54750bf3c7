// Evaluate a pipeline saved by fine-tune.cs (SaveWithAdapters) on labelled images: accuracy, log-loss, per-class recall and
// precision, and ML.NET's confusion table.
//
//   dotnet run -c Release samples/evaluate.cs -- [--model-zip fine-tuned.zip] [--test <dataset>] [--model <checkpoint>] [--limit N]
//
// <dataset>: a folder with one subfolder per class, a CSV of path,label, or IDX files (folder:test for the test split);
// default: the test split of the Fashion-MNIST excerpt in samples/data. The backbone is found again where the pipeline
// was trained from (its path or timm id), or at --model. Outside this repository, replace the #:project line with:
// #:package MLNet.MemoryTokens.ML@0.1.0
#:project ../src/MLNet.MemoryTokens.ML/MLNet.MemoryTokens.ML.csproj
#:package Microsoft.ML@6.0.0
#:property ManagePackageVersionsCentrally=false
#:property PublishAot=false

using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.Data;

const string Usage = "usage: dotnet run samples/evaluate.cs -- [--model-zip fine-tuned.zip] [--test <dataset>] [--model <checkpoint>] [--limit n]";
Dictionary<string, string> o;
try { o = Options(args, flags: []); }
catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}\n{Usage}"); return 2; }
if (o.ContainsKey("--help")) { Console.WriteLine(Usage); return 0; }

string scratch = Directory.CreateTempSubdirectory("evaluate-").FullName;   // ours: removed at the end
try
{
    string zip = Path.GetFullPath(o.GetValueOrDefault("--model-zip") ?? "fine-tuned.zip");
    var test = ImageDatasets.Open(o.GetValueOrDefault("--test") ?? SampleData() + ":test");
    if (o.TryGetValue("--limit", out var limit)) test = test.Take(Int(limit));

    var ml = new MLContext(seed: 0);
    var model = ml.Model.LoadWithAdapters(zip, out var inputSchema, backbonePath: o.GetValueOrDefault("--model"));
    Console.WriteLine($"model     {zip}: {string.Join(" → ", model.Select(t => t.GetType().Name))}");
    Console.WriteLine($"data      {test.Count} images, {test.ClassNames.Count} classes");

    var scored = model.Transform(ml.Data.LoadFromEnumerable(Rows(test, scratch)));
    var metrics = ml.MulticlassClassification.Evaluate(scored);
    Console.WriteLine($"test accuracy {metrics.MicroAccuracy:F4} ({Math.Round(metrics.MicroAccuracy * test.Count)}/{test.Count}), macro accuracy {metrics.MacroAccuracy:F4}, log-loss {metrics.LogLoss:F4}");
    Console.WriteLine();
    Console.WriteLine($"{"class",-16} {"recall",7} {"precision",9}");
    var names = new VBuffer<ReadOnlyMemory<char>>();
    scored.Schema["Score"].GetSlotNames(ref names);
    var classes = names.DenseValues().Select(n => n.ToString()).ToArray();
    for (int c = 0; c < classes.Length; c++)
        Console.WriteLine($"{classes[c],-16} {metrics.ConfusionMatrix.PerClassRecall[c],7:P1} {metrics.ConfusionMatrix.PerClassPrecision[c],9:P1}");
    Console.WriteLine();
    Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or FormatException or UnauthorizedAccessException or InvalidOperationException)
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

