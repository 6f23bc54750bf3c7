using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Real image files through ML.NET's own image loading (<c>LoadImages</c>, <c>MLImage.CreateFromFile</c>: SkiaSharp)
/// into our components, checked against the engine's decoder and preprocessing.</summary>
/// <remarks>What we found (ML.NET 6.0.0, SkiaSharp): decoding is bit-identical to ours on every shared photo (both follow
/// libjpeg-turbo's islow IDCT and fancy upsampling). Resizing is not: ML.NET 6's <c>ResizeImages</c> samples with Skia's
/// filters without antialiasing, while the engine resizes as timm/PIL do (bicubic, antialiased, filter support widened by
/// the scale factor). So our components take the full-size <c>MLImage</c> from <c>LoadImages</c> and resize it themselves:
/// give them the loaded image, not <c>ResizeImages</c>' output, to feed exactly what the checkpoint was trained on.</remarks>
public class RealImageTests
{
    static string Photos => Path.Combine(TestPaths.Shared!, "testdata", "imagenet");

    public static TheoryData<string> PhotoNames() =>
        TestPaths.Shared is null ? new TheoryData<string> { "none" } : new TheoryData<string>(Directory.GetFiles(Photos, "*.JPEG").Select(Path.GetFileName).Order()!);

    [SharedTheory]
    [MemberData(nameof(PhotoNames))]
    public void MLImageDecodesEachPhotoToExactlyOurDecodersPixels(string name)
    {
        var file = Path.Combine(Photos, name);
        using var image = MLImage.CreateFromFile(file);
        var skia = RgbOf(image);
        var ours = ImageDecoder.Load(file);
        Assert.Equal((ours.Width, ours.Height), (skia.Width, skia.Height));
        Assert.Equal(ours.Pixels, skia.Pixels);
        Assert.Equal(ImageDecoder.Load(Path.ChangeExtension(file, ".ppm")).Pixels, skia.Pixels);   // and libjpeg's (PIL's) pixels
    }

    [SharedFact]
    public void PngAndJpegFilesWrittenBySkiaDecodeAsSkiaDecodesThem()
    {
        using var temp = new TempFolder();
        foreach (var file in Directory.GetFiles(Photos, "*.JPEG").Order())
        {
            using var image = MLImage.CreateFromFile(file);
            foreach (var ext in new[] { ".png", ".jpg" })
            {
                var written = temp[Path.GetFileNameWithoutExtension(file) + ext];
                image.Save(written);
                using var back = MLImage.CreateFromFile(written);
                var ours = ImageDecoder.Load(written);
                Assert.Equal(RgbOf(back).Pixels, ours.Pixels);
                if (ext == ".png") Assert.Equal(RgbOf(image).Pixels, ours.Pixels);   // lossless
            }
        }
    }

    [SharedFact]
    public void ResizeImagesIsNotTheEnginesResizeButTheLoadedImageIs()
    {
        var ml = new MLContext();
        var files = Directory.GetFiles(Photos, "*.JPEG").Order().ToArray();
        var data = ml.Data.LoadFromEnumerable(files.Select(f => new PathRow { Path = f }));
        const int size = 112;
        var resized = ReadImages(ml.Transforms.LoadImages("Loaded", null, "Path")
            .Append(ml.Transforms.ResizeImages("Resized", size, size, "Loaded", ImageResizingEstimator.ResizingKind.IsoCrop)).Fit(data).Transform(data), "Resized");
        var loaded = ReadImages(ml.Transforms.LoadImages("Loaded", null, "Path").Fit(data).Transform(data), "Loaded");
        var preprocess = new PreprocessConfig { InputSize = size, CropFraction = 1, Interpolation = Interpolation.Bicubic };
        for (int k = 0; k < files.Length; k++)
        {
            var source = ImageDecoder.Load(files[k]);
            var engine = ImageTransforms.CenterCrop(ImageTransforms.ResizeShorterSide(source, size, Interpolation.Bicubic), size, size);
            var pointSampled = ImageTransforms.CenterCrop(ImageTransforms.ResizeShorterSide(source, size, Interpolation.Bilinear, antialias: false), size, size);
            // ML.NET 6 resizes without antialiasing: far from the engine's antialiased bicubic, near a plain bilinear sampling
            double fromEngine = MeanAbsDifference(engine, resized[k]), fromPointSampled = MeanAbsDifference(pointSampled, resized[k]);
            Assert.True(fromEngine > 2 * fromPointSampled || fromEngine > 3, $"{files[k]}: {fromEngine:F2} levels from the engine's resize, {fromPointSampled:F2} from bilinear without antialias");
            Assert.True(fromEngine > 1, $"{files[k]}: ResizeImages output is within {fromEngine:F2} levels of the engine's resize");
            // the full-size loaded image, resized by the engine's preprocessing, is exactly what the engine feeds the model
            var viaLoaded = new float[3 * size * size];
            var viaEngine = new float[3 * size * size];
            ImageTransforms.Preprocess(loaded[k], size, 1, Interpolation.Bicubic, preprocess.Mean, preprocess.Std, viaLoaded);
            ImageTransforms.Preprocess(source, size, 1, Interpolation.Bicubic, preprocess.Mean, preprocess.Std, viaEngine);
            Assert.Equal(viaEngine, viaLoaded);
        }
    }

    /// <summary>Real images (the shipped Fashion-MNIST sample) as PNG and JPEG files, through <c>LoadImages</c> into the
    /// memory-token trainer: the same bits as the engine API trained on the same files.</summary>
    [Fact]
    public void LoadImagesOfRealFilesTrainsTheSameBitsAsTheEngineOnThoseFiles()
    {
        using var temp = new TempFolder();
        var (rows, folder) = WriteFashionFiles(temp.Path, perClass: 6);
        var backbone = TinyVit.Create();
        var training = new TrainingOptions { Epochs = 2, BatchSize = 8, LearningRate = 1e-2f, Seed = 5, ValidationFraction = 0 };
        var engineData = ImageDatasets.FromFolder(folder);
        var engine = Trainer.Train(backbone, engineData, null, new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 }, training);

        var ml = new MLContext(seed: 5);
        var data = ml.Data.LoadFromEnumerable(OrderLike(engineData, rows));
        var keyData = ml.Data.LoadFromEnumerable(engineData.ClassNames.Select(c => new LabelOnly { Label = c }));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label", keyData: keyData)
            .Append(ml.Transforms.LoadImages("Image", null, "Path"))
            .Append(ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
            {
                Backbone = backbone, MemoryTokens = 2, Epochs = training.Epochs, BatchSize = training.BatchSize,
                LearningRate = training.LearningRate, Seed = training.Seed, ValidationFraction = 0,
            }));
        var model = pipeline.Fit(data);
        var classifier = model.LastTransformer;
        foreach (var (name, tensor) in engine.Adapter.Tensors) Assert.Equal(tensor.Data, classifier.Adapter.Tensors[name].Data);

        var engineMetrics = Trainer.Evaluate(engine.Model, PreparedImages.From(engineData, Trainer.TrainingPreprocess(backbone)), 8);
        var mlMetrics = ml.MulticlassClassification.Evaluate(model.Transform(data));
        Assert.Equal(engineMetrics.Accuracy, mlMetrics.MicroAccuracy, 12);
    }

    /// <summary>The VQT featurizer gives the same features from <c>LoadImages</c>' MLImage column as from a path column
    /// (decoded by the engine), on real PNG and JPEG files.</summary>
    [Fact]
    public void VqtFeaturesFromLoadImagesEqualFeaturesFromPaths()
    {
        using var temp = new TempFolder();
        var (rows, _) = WriteFashionFiles(temp.Path, perClass: 4);
        var ml = new MLContext(seed: 3);
        var data = ml.Data.LoadFromEnumerable(rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var options = new VqtFeaturizerEstimator.Options { Backbone = TinyVit.Create(), QueryTokens = 2, Epochs = 2, BatchSize = 8, Seed = 3, ValidationFraction = 0 };
        var fromImages = ml.Transforms.LoadImages("Image", null, "Path").Append(ml.Transforms.VqtFeaturizer(options)).Fit(keyed).Transform(keyed);
        options.ImageColumnName = "Path";
        var fromPaths = ml.Transforms.VqtFeaturizer(options).Fit(keyed).Transform(keyed);
        var a = fromImages.GetColumn<float[]>("Features").ToArray();
        var b = fromPaths.GetColumn<float[]>("Features").ToArray();
        Assert.Equal(rows.Count, a.Length);
        Assert.Equal(b, a);
        Assert.All(a, f => Assert.Contains(f, v => v != 0));
    }

    /// <summary>The real checkpoint through ML.NET: the shared photos via <c>LoadImages</c>, scored by the multi-task pass
    /// (a masked task trained for one epoch on the photos); the original head, exact by construction, finds their classes.</summary>
    [SharedFact]
    public void RealCheckpointScoresLoadedPhotosWithTheOriginalHead()
    {
        var ml = new MLContext(seed: 0);
        var labels = File.ReadAllLines(Path.Combine(Photos, "labels.csv")).Skip(1).Select(l => l.Split(',')).ToArray();
        var rows = labels.Select(l => new PathRow { Path = Path.Combine(Photos, l[0]), Label = int.Parse(l[2]) < 400 ? "animal" : "object" }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var backbone = Backbone.Load(Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors"));
        var loaded = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadImages("Image", null, "Path")).Fit(data).Transform(data);
        var task = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
        {
            Backbone = backbone, Masked = true, MemoryTokens = 1, Epochs = 1, BatchSize = 8, Seed = 0, ValidationFraction = 0,
        }).Fit(loaded);
        var scored = ml.Transforms.ScoreMemoryTokenTasks([new MemoryTokenTask("kind", task)]).Fit(loaded).Transform(loaded);
        var original = scored.GetColumn<float[]>("Original.Score").ToArray();
        int top1 = labels.Select((l, i) => original[i].AsSpan().IndexOf(original[i].Max()) == int.Parse(l[2]) ? 1 : 0).Sum();
        Assert.True(top1 >= 7, $"true class first for {top1} of 8 photos");
        Assert.Equal(8, scored.GetColumn<float[]>("kind.Score").Count());
    }

    // ---------------------------------------------------------------- helpers

    public sealed class PathRow
    {
        public string Path { get; set; } = "";
        public string Label { get; set; } = "";
    }

    sealed class LabelOnly { public string Label { get; set; } = ""; }

    /// <summary>The first <paramref name="perClass"/> images of each class of the shipped Fashion-MNIST sample, written by
    /// Skia into class folders (odd ones as PNG, even ones as JPEG at quality 90).</summary>
    static (List<PathRow> Rows, string Folder) WriteFashionFiles(string root, int perClass)
    {
        var sample = ImageDatasets.Open(Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k"));
        var folder = Path.Combine(root, "fashion");
        var rows = new List<PathRow>();
        var taken = new int[sample.ClassNames.Count];
        for (int i = 0; i < sample.Count && taken.Any(t => t < perClass); i++)
        {
            int label = sample.LabelOf(i);
            if (taken[label] >= perClass) continue;
            string cls = sample.ClassNames[label].Replace('/', '-');
            Directory.CreateDirectory(Path.Combine(folder, cls));
            var path = Path.Combine(folder, cls, $"{i:D4}{(taken[label]++ % 2 == 0 ? ".jpg" : ".png")}");
            using var image = ToMLImage(sample.Load(i));
            image.Save(path);
            rows.Add(new PathRow { Path = path, Label = cls });
        }
        return (rows, folder);
    }

    /// <summary>Rows in the engine dataset's order (class folders, then file names), so both paths see the same sequence.</summary>
    static List<PathRow> OrderLike(IImageDataset dataset, List<PathRow> rows) =>
        Enumerable.Range(0, dataset.Count).Select(i => rows.Single(r => Path.GetFullPath(r.Path) == Path.GetFullPath(dataset.SourceOf(i)))).ToList();

    static MLImage ToMLImage(RgbImage image)
    {
        var bgra = new byte[image.Width * image.Height * 4];
        for (int i = 0; i < image.Width * image.Height; i++)
        {
            bgra[i * 4] = image.Pixels[i * 3 + 2];
            bgra[i * 4 + 1] = image.Pixels[i * 3 + 1];
            bgra[i * 4 + 2] = image.Pixels[i * 3];
            bgra[i * 4 + 3] = 255;
        }
        return MLImage.CreateFromPixels(image.Width, image.Height, MLPixelFormat.Bgra32, bgra);
    }

    /// <summary>RGB bytes of a Bgra32 MLImage (what LoadImages and CreateFromFile give).</summary>
    static RgbImage RgbOf(MLImage image)
    {
        Assert.Equal(MLPixelFormat.Bgra32, image.PixelFormat);
        int w = image.Width, h = image.Height, stride = image.Pixels.Length / h;
        var rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int s = y * stride + x * 4, o = (y * w + x) * 3;
                (rgb[o], rgb[o + 1], rgb[o + 2]) = (image.Pixels[s + 2], image.Pixels[s + 1], image.Pixels[s]);
            }
        return new RgbImage(w, h, rgb);
    }

    static List<RgbImage> ReadImages(IDataView view, string column)
    {
        var images = new List<RgbImage>();
        using var cursor = view.GetRowCursor([view.Schema[column]]);
        var get = cursor.GetGetter<MLImage>(view.Schema[column]);
        MLImage image = null!;
        while (cursor.MoveNext())
        {
            get(ref image);
            images.Add(RgbOf(image));   // copied now: the cursor disposes each image when it moves on
        }
        return images;
    }

    static double MeanAbsDifference(RgbImage a, RgbImage b)
    {
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        long sum = 0;
        for (int i = 0; i < a.Pixels.Length; i++) sum += Math.Abs(a.Pixels[i] - b.Pixels[i]);
        return sum / (double)a.Pixels.Length;
    }
}
