// Serve several tasks from one backbone in one forward pass: attention-masked memory-token adapters (each trained on its
// own, e.g. with fine-tune.cs --masked --adapter-out <dir>, or mmt train --masked) scored together with the backbone's own
// head by ScoreMemoryTokenTasks. Masking keeps each task exactly what it was alone; the sample checks that too.
//
//   dotnet run -c Release samples/multitask-serving.cs -- --task <name>=<adapter dir> [--task <name>=<dir> ...]
//       [--data <dataset>] [--model <checkpoint>] [--limit 8]
//
// <dataset>: the images to serve, as a folder with one subfolder per class, a CSV of path,label, or IDX files; default: the
// test split of the Fashion-MNIST excerpt in samples/data. The backbone: --model, else the one the first adapter records.
// Outside this repository, replace the #:project line with: #:package MLNet.MemoryTokens.ML@0.1.0
#:project ../src/MLNet.MemoryTokens.ML/MLNet.MemoryTokens.ML.csproj
#:package Microsoft.ML@6.0.0
#:property ManagePackageVersionsCentrally=false
#:property PublishAot=false

using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.Tuning;

const string Usage = "usage: dotnet run samples/multitask-serving.cs -- --task <name>=<adapter dir> [--task ...] [--data <dataset>] [--model <checkpoint>] [--limit n]";
var tasks = new List<MemoryTokenTask>();
Dictionary<string, string> o;
try
{
    var rest = new List<string>();
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i] != "--task") { rest.Add(args[i]); continue; }
        if (i + 1 >= args.Length || args[++i].Split('=', 2) is not [var name, var dir] || name.Length == 0) throw new ArgumentException("--task needs <name>=<adapter dir>");
        tasks.Add(new MemoryTokenTask(name, Adapter.Load(dir)));
    }
    o = Options([.. rest], flags: []);
    if (!o.ContainsKey("--help") && tasks.Count == 0) throw new ArgumentException("give at least one --task <name>=<adapter dir>");
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException)
{
    Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
    return 2;
}
if (o.ContainsKey("--help")) { Console.WriteLine(Usage); return 0; }

string scratch = Directory.CreateTempSubdirectory("multitask-").FullName;   // ours: removed at the end
try
{
    var images = ImageDatasets.Open(o.GetValueOrDefault("--data") ?? SampleData() + ":test").Take(Int(o.GetValueOrDefault("--limit") ?? "8"));
    var ml = new MLContext(seed: 0);
    var data = ml.Data.LoadFromEnumerable(Rows(images, scratch));
    string? model = o.GetValueOrDefault("--model");

    // All tasks and the original head (when the checkpoint has one) in one pass: one Score column per task.
    var serving = ml.Transforms.ScoreMemoryTokenTasks(new MultiTaskScoringEstimator.Options
    {
        Tasks = tasks, ImageColumnName = "ImagePath", BackbonePath = model,
    }).Fit(data);
    var scored = serving.Transform(data);
    Console.WriteLine($"serving   {images.Count} images, tasks {string.Join(", ", tasks.Select(t => $"{t.Name} ({t.Adapter.Config.ClassLabels.Length} classes)"))}" +
        (scored.Schema.GetColumnOrNull("Original.Score") is { } original ? $", and the backbone's own head ({((VectorDataViewType)original.Type).Size} classes)" : ""));

    var columns = tasks.Select(t => scored.GetColumn<float[]>(t.OutputColumnName).ToArray()).ToArray();
    float[][]? originalScores = scored.Schema.GetColumnOrNull("Original.Score") is null ? null : scored.GetColumn<float[]>("Original.Score").ToArray();
    Console.WriteLine($"{"image",-28} {"labelled",-12} {string.Join(" ", tasks.Select(t => $"{t.Name,-22}"))}{(originalScores is null ? "" : " original top-1")}");
    for (int i = 0; i < images.Count; i++)
    {
        var cells = tasks.Select((t, k) => { int best = ArgMax(columns[k][i]); return $"{t.Adapter.Config.ClassLabels[best]} ({columns[k][i][best]:F2})"; });
        Console.WriteLine($"{Path.GetFileName(images.SourceOf(i)),-28} {images.ClassNames[images.LabelOf(i)],-12} {string.Join(" ", cells.Select(c => $"{c,-22}"))}{(originalScores is null ? "" : $" class {ArgMax(originalScores[i])}")}");
    }

    // Masked tasks do not see each other: each task's scores in the shared pass are those it gives alone.
    foreach (var (task, k) in tasks.Select((t, k) => (t, k)))
    {
        var alone = ml.Transforms.ScoreMemoryTokenTasks(new MultiTaskScoringEstimator.Options { Tasks = [task], ImageColumnName = "ImagePath", BackbonePath = model, OriginalScoreColumnName = null })
            .Fit(data).Transform(data).GetColumn<float[]>(task.OutputColumnName).ToArray();
        bool same = alone.Zip(columns[k]).All(p => p.First.AsSpan().SequenceEqual(p.Second));
        Console.WriteLine($"task {task.Name}: one pass with the others = alone: {(same ? "identical" : "DIFFERENT")}");
        if (!same) return 1;
    }
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

static int ArgMax(float[] v) { int best = 0; for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i; return best; }

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

