using System.Text;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Each documented limit (docs/reliability.md) at its value (accepted) and one beyond (refused with a clear error),
/// and the overflow that used to corrupt memory.</summary>
public class LimitsTests
{

    [Fact]
    public void AttentionScoresBeyondTheBufferLimitAreRefusedNotWrapped()
    {
        const int tokens = 65_537;   // one head of width 1: the inputs are small, the scores [N, N] are not
        var qkv = new float[3 * tokens];
        var output = new float[tokens];
        var ex = Assert.Throws<LimitExceededException>(() => Attention.Forward(output, default, qkv, Attention.Layout.SelfAttention(1, tokens, 1, 1)));
        Assert.Contains("65537 queries", ex.Message);
        // at the largest image the limits admit (4097 tokens) the same kernel runs: rows of its output are convex mixes of v
        const int n = 4097;
        var rng = new Random(1);
        var q2 = Enumerable.Range(0, 3 * n).Select(_ => (float)rng.NextDouble()).ToArray();
        var o2 = new float[n];
        Attention.Forward(o2, default, q2, Attention.Layout.SelfAttention(1, n, 1, 1));
        float vmin = Enumerable.Range(0, n).Min(i => q2[3 * i + 2]), vmax = Enumerable.Range(0, n).Max(i => q2[3 * i + 2]);
        Assert.All(o2, v => Assert.InRange(v, vmin - 1e-5f, vmax + 1e-5f));
    }

    [Fact]
    public void AnAttentionLayoutWhoseRowsOverflowAnIntIsRefused()
    {
        var qkv = new float[3 * 4];
        Assert.Throws<ArgumentException>(() => Attention.Forward(new float[4], default, qkv, new Attention.Layout(1, 4, 1, 1, int.MaxValue, 2, 0, 4)));
    }

    [Fact]
    public void ImageSizeAtTheLimitRunsAndBeyondItIsRefused()
    {
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(imageSize: 32, patch: 16, classes: 3, dim: 8, depth: 1, heads: 1));
        var atLimit = Backbone.Load(ckpt, new BackboneOptions { ImageSize = Limits.MaxImageSize });
        Assert.Equal(Limits.MaxPatchTokens + 1, atLimit.Model.Config.NumTokens);
        var logits = atLimit.Model.Forward(new Tensor([1, 3, Limits.MaxImageSize, Limits.MaxImageSize]));
        Assert.All(logits.Data, v => Assert.True(float.IsFinite(v)));
        var beyond = Assert.Throws<LimitExceededException>(() => Backbone.Load(ckpt, new BackboneOptions { ImageSize = Limits.MaxImageSize + 16 }));
        Assert.Contains($"{Limits.MaxImageSize + 16}", beyond.Message);
        Assert.Throws<LimitExceededException>(() => Backbone.Load(ckpt, new BackboneOptions { ImageSize = 4096 }));
    }

    [Fact]
    public void PatchTokensAtTheLimitAndBeyond()
    {
        TinyConfig(imageSize: 512, patch: 8).Validate();                      // 64 × 64 = 4096 patches
        var ex = Assert.Throws<LimitExceededException>(() => TinyConfig(imageSize: 520, patch: 8).Validate());   // 65 × 65
        Assert.Contains("4225", ex.Message);
    }

    [Fact]
    public void MemoryAndQueryTokensAtTheLimitAndBeyond()
    {
        new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = Limits.MaxMemoryTokens }.Validate();
        new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = Limits.MaxQueryTokens }.Validate();
        Assert.Throws<LimitExceededException>(() => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = Limits.MaxMemoryTokens + 1 }.Validate());
        Assert.Throws<LimitExceededException>(() => new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = Limits.MaxQueryTokens + 1 }.Validate());
        // and through the command line, before anything is loaded
        var run = RunCli(["train", "--model", "/nonexistent.safetensors", "--data", "/nonexistent", "--tokens", "100000", "--out", Path.Combine(Path.GetTempPath(), "never")]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("100000", run.Stderr);
    }

    [Fact]
    public void TasksInOnePassAtTheLimitAndBeyond()
    {
        var backbone = TinyBackbone(config: TinyConfig(dim: 8, depth: 1, heads: 1));
        var tuning = new TuningOptions { Method = TuningMethod.Memory, Masked = true, MemoryTokens = 1 };
        var adapters = Enumerable.Range(0, Limits.MaxTasks + 1)
            .Select(i => ($"t{i}", Adapter.From(tuning.CreateModel(backbone.Model, 2, i), backbone, tuning, ["a", "b"], backbone.Preprocess))).ToList();
        var multi = new MultiTaskVit(backbone, adapters.Take(Limits.MaxTasks).ToList());
        Assert.Equal(Limits.MaxTasks, multi.Forward(new Tensor([1, 3, 16, 16])).Tasks.Length);
        Assert.Throws<LimitExceededException>(() => new MultiTaskVit(backbone, adapters));
        // an extension reads at most MaxTasks − 1 earlier adapters
        Assert.Throws<LimitExceededException>(() => (tuning with { Extends = adapters.Select(a => a.Item2).Take(Limits.MaxTasks).ToArray() }).Validate());
    }

    [Fact]
    public void ClassesAtTheLimitAndBeyond()
    {
        (TinyConfig() with { NumClasses = Limits.MaxClasses }).Validate();
        Assert.Throws<LimitExceededException>(() => (TinyConfig() with { NumClasses = Limits.MaxClasses + 1 }).Validate());
        // a task: the head is [C, D]; two images of the first and last class train one step at the limit
        var backbone = TinyBackbone(config: TinyConfig(dim: 8, depth: 1, heads: 1));
        var options = new TrainingOptions { Epochs = 1, BatchSize = 2, ValidationFraction = 0 };
        var result = Trainer.Train(backbone, new LabelledSquares([0, Limits.MaxClasses - 1], Limits.MaxClasses), null, new TuningOptions { Method = TuningMethod.HeadAndClassToken }, options);
        Assert.Equal(Limits.MaxClasses, result.Model.NumClasses);
        var ex = Assert.Throws<LimitExceededException>(() => Trainer.Train(backbone, new LabelledSquares([0, Limits.MaxClasses], Limits.MaxClasses + 1), null,
            new TuningOptions { Method = TuningMethod.HeadAndClassToken }, options));
        Assert.Contains($"{Limits.MaxClasses + 1}", ex.Message);
    }

    sealed class LabelledSquares(int[] labels, int classes) : IImageDataset
    {
        public int Count => labels.Length;
        public IReadOnlyList<string> ClassNames { get; } = Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray();
        public int LabelOf(int index) => labels[index];
        public string SourceOf(int index) => $"square#{index}";
        public RgbImage Load(int index) => new(16, 16);
    }

    [Fact]
    public void BatchAtTheLimitAndBeyond()
    {
        new TrainingOptions { BatchSize = Limits.MaxBatch }.Validate();
        Assert.Throws<LimitExceededException>(() => new TrainingOptions { BatchSize = Limits.MaxBatch + 1 }.Validate());
        var vit = VisionTransformer.CreateRandom(TinyConfig(imageSize: 8, patch: 4, classes: 2, dim: 8, depth: 1, heads: 1), 1);
        Assert.Equal([Limits.MaxBatch, 2], vit.Forward(new Tensor([Limits.MaxBatch, 3, 8, 8])).Shape);
        Assert.Throws<LimitExceededException>(() => vit.Forward(new Tensor([Limits.MaxBatch + 1, 3, 8, 8])));
        using var s = new Scratch();
        var run = RunCli(["predict", "--model", "/nonexistent.safetensors", "--batch", $"{Limits.MaxBatch + 1}", s.Root]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("--batch", run.Stderr);
    }

    [Fact]
    public void TensorElementsAtTheLimitAndBeyond()
    {
        Assert.Equal(Limits.MaxTensorElements, Limits.CheckElements("x", Limits.MaxTensorElements));
        Assert.Throws<LimitExceededException>(() => Limits.CheckElements("x", Limits.MaxTensorElements + 1));
        Assert.Equal(long.MaxValue, Limits.Product(int.MaxValue, int.MaxValue, int.MaxValue));   // saturates, never wraps
        // a training batch's attention probabilities [B, H, S, S]: 63 images of 4097 tokens fit, 64 do not
        var c = TinyConfig(imageSize: 1024, patch: 16, dim: 8, depth: 1, heads: 1);
        c.CheckBatch(63, 4097, training: true);
        var ex = Assert.Throws<LimitExceededException>(() => c.CheckBatch(64, 4097, training: true));
        Assert.Contains("batch", ex.Message);
        // a safetensors header: a tensor of exactly 2^30 U8 elements parses, one more is refused before anything is read
        static byte[] Header(long n) => Encoding.UTF8.GetBytes($"{{\"t\":{{\"dtype\":\"U8\",\"shape\":[{n}],\"data_offsets\":[0,{n}]}}}}");
        SafeTensorsHeader.Parse("at.safetensors", Header(Limits.MaxTensorElements), 8, Limits.MaxTensorElements);
        var over = Assert.Throws<CheckpointException>(() => SafeTensorsHeader.Parse("over.safetensors", Header(Limits.MaxTensorElements + 1), 8, Limits.MaxTensorElements + 1));
        Assert.Contains("limit", over.Message);
    }

    [Fact]
    public void FileSizesAtTheLimitAndBeyond()
    {
        using var s = new Scratch();
        // sparse files: the size is what is checked, before a byte is read
        string Sparse(string name, long bytes)
        {
            using (var f = File.Create(s[name])) f.SetLength(bytes);
            return s[name];
        }
        var imageAt = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(Sparse("at.jpg", Limits.MaxImageFileBytes)));
        Assert.Contains("unrecognised image format", imageAt.Message);   // read, then found not to be an image
        var imageOver = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(Sparse("over.jpg", Limits.MaxImageFileBytes + 1)));
        Assert.Contains("limit", imageOver.Message);
        var ckptAt = Assert.Throws<CheckpointException>(() => CheckpointReader.ReadTensors(Sparse("at.safetensors", Limits.MaxCheckpointBytes)));
        Assert.DoesNotContain("limit", ckptAt.Message);
        var ckptOver = Assert.Throws<InputFileException>(() => CheckpointReader.ReadTensors(Sparse("over.safetensors", Limits.MaxCheckpointBytes + 1)));
        Assert.Contains("limit", ckptOver.Message);
        Assert.Throws<InputFileException>(() => ImageDatasets.FromCsv(Sparse("over.csv", Limits.MaxTextFileBytes + 1)));
    }

    [Fact]
    public void AnIdxGzipBombStopsAtItsHeader()
    {
        using var s = new Scratch();
        // the header promises 40000 × 200 × 200 bytes (1.6 GB); only the header is decompressed before the refusal
        var header = new byte[16];
        header[2] = 8; header[3] = 3;
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), 40_000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), 200);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), 200);
        var path = s["train-images-idx3-ubyte.gz"];
        File.WriteAllBytes(path, MLNet.MemoryTokens.Tests.Data.TempDir.Gzip(header));
        var ex = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path, 3));
        Assert.Contains("limit", ex.Message);
        Assert.DoesNotContain("corrupt gzip", ex.Message);
    }
}
