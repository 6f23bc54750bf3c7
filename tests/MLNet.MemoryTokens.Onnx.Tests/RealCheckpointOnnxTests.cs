using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Tuning.Baselines;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>The real ImageNet ViT-Ti/16 from ../shared exported and run in ONNX Runtime (skipped without ../shared).</summary>
public class RealCheckpointOnnxTests
{
    const double Tolerance = 1e-4;
    static string Checkpoint => Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors");

    /// <summary>The eight ImageNet photos, preprocessed as the checkpoint expects.</summary>
    static Tensor Photos(Backbone backbone, int count)
    {
        var dir = Path.Combine(TestPaths.Shared!, "testdata", "imagenet");
        var files = Directory.GetFiles(dir, "*.JPEG").Order().Take(count).ToList();
        return backbone.PreprocessImages(files.Select(f => ImageDecoder.Load(f)).ToList());
    }

    [SharedFact]
    public void TheCheckpointAt224GivesOurLogitsAndTopClassesOnRealPhotos()
    {
        var backbone = Backbone.Load(Checkpoint);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("vit.onnx"), backbone);
        using var session = Session(summary.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Photos(backbone, batch);
            var ours = backbone.Model.Forward(x).Data;
            var onnx = Run(session, x)[OnnxExport.BackboneOutput];
            AssertClose(ours, onnx, Tolerance, $"ViT-Ti/16 at 224, batch {batch}");
            for (int b = 0; b < batch; b++)
                Assert.Equal(Classification.TopK(ours.AsSpan(b * 1000, 1000), 5), Classification.TopK(onnx.AsSpan(b * 1000, 1000), 5));
        }
    }

    public static TheoryData<string> AllMethods() => new(Methods.Where(m => m != "masked-extension"));

    [SharedTheory]
    [MemberData(nameof(AllMethods))]
    public void EveryMethodOnTheCheckpointAt112(string method)
    {
        var backbone = Backbone.Load(Checkpoint, new BackboneOptions { ImageSize = 112, DropHead = true });
        // head and weight changes of a trained model's size (the final-norm features of this checkpoint reach 31, so a head
        // far larger than its own would magnify float32 noise past any bound)
        var adapter = TrainedAdapter(backbone, method, seed: 11, classes: 10, headScale: 0.1f, backboneScale: 0.01f);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("task.onnx"), backbone, [("task", adapter)]);
        var ours = adapter.CreateModel(backbone, method);
        using var session = Session(summary.Path);
        foreach (int batch in new[] { 1, 3 })
        {
            var x = Photos(backbone, batch);
            AssertClose(ours.Forward(x, keepForBackward: false).Data, Run(session, x)["task"], Tolerance, $"{method} on ViT-Ti/16 at 112, batch {batch}");
        }
    }

    [SharedFact]
    public void TheMultiTaskPassOnTheCheckpointKeepsTheOriginalHeadExact()
    {
        var backbone = Backbone.Load(Checkpoint, new BackboneOptions { ImageSize = 112 });
        var tasks = Enumerable.Range(0, 3).Select(i => ($"task{i}", TrainedAdapter(backbone, "masked", seed: 20 + i, classes: 10, headScale: 0.1f))).ToList();
        using var dir = new TempFolder();
        var multi = OnnxExport.Save(dir.PathOf("multi.onnx"), backbone, tasks);
        var alone = OnnxExport.Save(dir.PathOf("vit.onnx"), backbone);
        using var session = Session(multi.Path);
        using var backboneSession = Session(alone.Path);
        var x = Photos(backbone, 3);
        var outputs = Run(session, x);
        var (original, ours) = new MultiTaskVit(backbone, tasks).Forward(x);
        AssertClose(original!.Data, outputs[OnnxExport.OriginalOutput], Tolerance, "original head");
        for (int t = 0; t < tasks.Count; t++) AssertClose(ours[t].Data, outputs[$"task{t}"], Tolerance, $"task{t}");
        Assert.Equal(Run(backboneSession, x)[OnnxExport.BackboneOutput], outputs[OnnxExport.OriginalOutput]);
    }

    [SharedFact]
    public void TheReadmeConsumerWithOnlyOnnxRuntimeGetsOurPredictionsOnRealPhotos()
    {
        var backbone = Backbone.Load(Checkpoint);
        var photos = Path.Combine(TestPaths.Shared!, "testdata", "imagenet");
        var names = File.ReadAllLines(Path.Combine(photos, "imagenet1k_class_names.txt")).Where(l => l.Trim().Length > 0).ToArray();
        // the ImageNet head as a head-only adapter, so the model carries labels and the eval transform in its metadata
        var tuning = new TuningOptions { Method = TuningMethod.HeadOnly };
        var model = (BaselineVit)tuning.CreateModel(backbone.Model, names.Length, seed: 0);
        backbone.Model.Parameters["head.weight"].Data.CopyTo(model.HeadWeight.Data, 0);
        backbone.Model.Parameters["head.bias"].Data.CopyTo(model.HeadBias.Data, 0);
        var adapter = Adapter.From(model, backbone, tuning, names, backbone.Preprocess);
        using var dir = new TempFolder();
        var summary = OnnxExport.Save(dir.PathOf("imagenet.onnx"), backbone, [("imagenet", adapter)]);
        var files = Directory.GetFiles(photos, "*.JPEG").Order().ToArray();
        var ours = backbone.Model.Forward(backbone.PreprocessImages(files.Select(f => ImageDecoder.Load(f)).ToList())).Data;
        int agree = 0;
        for (int i = 0; i < files.Length; i++)
        {
            string expected = names[Classification.TopK(ours.AsSpan(i * 1000, 1000), 1)[0]];
            agree += OnnxRuntimeSample.Consumer.Predict(summary.Path, files[i], "imagenet") == expected ? 1 : 0;
        }
        // SkiaSharp's bicubic resize is not PIL's, so a near tie may flip; the rest must agree
        Assert.True(agree >= files.Length - 1, $"the consumer agrees with us on {agree} of {files.Length} photos");
    }
}
