using System.IO.Compression;
using System.Text;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Fuzz;

/// <summary>One format under test: its seed inputs, what is done with an input, and which exceptions are a clean refusal
/// (anything else is a crash). <paramref name="Json"/> turns on the structural JSON mutations.</summary>
/// <paramref name="Fixup"/>, when given, repairs a mutated input's checksums half of the time, so that mutations reach past them.
public sealed record FuzzTarget(string Name, IReadOnlyList<byte[]> Seeds, Action<byte[]> Run, Func<Exception, bool> IsRejection, int MaxBytes, bool Json = false,
    Func<byte[], byte[]>? Fixup = null);

/// <summary>The eight targets: JPEG, PNG, BMP, PPM/PGM (the decoders without their safety net), IDX, safetensors and .npz (as a
/// backbone checkpoint, through mapping and the strict load), and adapter_config.json (schema, then the model it describes).</summary>
public static class FuzzTargets
{
    /// <summary>Tighter than the defaults so that every input stays fast: a header may still claim any size up to these.</summary>
    static readonly ImageDecoderLimits FuzzLimits = new() { MaxWidth = 4096, MaxHeight = 4096, MaxPixels = 4_000_000 };

    public static IReadOnlyList<FuzzTarget> All(string fixtures, string scratch)
    {
        byte[][] Files(string folder, params string[] patterns) =>
            patterns.SelectMany(p => Directory.GetFiles(Path.Combine(fixtures, folder), p)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        static bool Decode(Exception e) => e is ImageDecodeException;
        Action<byte[]> Image(string name) => data => ImageDecoder.DecodeCore(data, name, FuzzLimits, applyExif: true);
        Directory.CreateDirectory(scratch);
        string file = Path.Combine(scratch, "input.bin");

        var tiny = TinyBackbone();
        return
        [
            new("jpeg", Files("images", "jpeg_*.jpg"), Image("fuzz.jpg"), Decode, 64 << 10),
            new("png", Files("images", "png_*.png"), Image("fuzz.png"), Decode, 64 << 10, Fixup: FixPngCrcs),
            new("bmp", Files("images", "bmp_*.bmp"), Image("fuzz.bmp"), Decode, 64 << 10),
            new("ppm", Files("images", "pnm_*.p?m"), Image("fuzz.ppm"), Decode, 64 << 10),
            new("idx", [.. Files(Path.Combine("data", "idx"), "*-ubyte"), .. IdxSeeds()], data =>
            {
                int rank = data.Length > 3 && data[3] == 1 ? 1 : 3;
                var idx = IdxFile.Parse("fuzz-idx", data, rank);
                if (rank == 3 && idx.Shape[0] > 0)   // read every image as the data set would
                {
                    File.WriteAllBytes(file, data);
                    File.WriteAllBytes(file + ".labels", [0, 0, 8, 1, .. BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(idx.Shape[0])), .. new byte[idx.Shape[0]]]);
                    var ds = ImageDatasets.FromIdx(file, file + ".labels");
                    for (int i = 0; i < Math.Min(ds.Count, 16); i++) ds.Load(i);
                }
            }, e => e is InvalidDataException, 64 << 10),
            new("safetensors", [.. Files("checkpoints", "*.safetensors"), .. Files(Path.Combine("parity", "families"), "*.hf.safetensors", "*.openclip.safetensors", "dinov2_reg.safetensors", "gap.safetensors", "deit_distilled.safetensors")], data => Checkpoint(data, file + ".safetensors"), CheckpointRejection, 256 << 10),
            new("npz", Files("checkpoints", "*.npz"), data => Checkpoint(data, file + ".npz"), CheckpointRejection, 256 << 10),
            new("adapter-json", AdapterSeeds(tiny), data => Adapter(data, tiny), e => e is InvalidDataException or InvalidOperationException or LimitExceededException, 16 << 10, Json: true),
        ];
    }

    /// <summary>Recomputes every complete chunk's CRC (PNG refuses a chunk whose CRC does not match, before reading it).</summary>
    static byte[] FixPngCrcs(byte[] data)
    {
        var d = (byte[])data.Clone();
        for (int pos = 8; pos + 12 <= d.Length;)
        {
            long length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(pos));
            if (length > d.Length - pos - 12) break;
            uint crc = Crc32.Compute(d.AsSpan(pos + 4, 4 + (int)length));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(d.AsSpan(pos + 8 + (int)length), crc);
            pos += 12 + (int)length;
        }
        return d;
    }

    static bool CheckpointRejection(Exception e) => e is CheckpointException or InvalidDataException or LimitExceededException;

    static void Checkpoint(byte[] data, string path)
    {
        File.WriteAllBytes(path, data);
        var backbone = Backbone.Load(path);
        if (backbone.Model.Config.NumClasses > 0)   // run what was loaded: a forward of one image
            backbone.Model.Forward(new Tensor([1, 3, backbone.Model.Config.ImageSize, backbone.Model.Config.ImageSize]));
    }

    static void Adapter(byte[] data, Backbone backbone)
    {
        var (config, _) = AdapterConfigSchema.Read(data, "adapter_config.json");
        if (config.Extends.Length > 0) return;   // would read the folders it names
        var tensors = Tensors(config, backbone);
        var adapter = new Tuning.Adapter(config, tensors);
        var model = adapter.CreateModel(backbone, "fuzz");
        model.Forward(new Tensor([1, 3, backbone.Model.Config.ImageSize, backbone.Model.Config.ImageSize]), keepForBackward: false);
    }

    /// <summary>Tensors as a seed config of this shape would have: shapes from the config, so a mutated size is caught by the
    /// model rather than by the tensors (capped, so a huge count cannot make the harness itself allocate gigabytes).</summary>
    static Dictionary<string, Tensor> Tensors(AdapterConfig c, Backbone backbone)
    {
        int d = backbone.Model.Config.Dim, l = backbone.Model.Config.Depth;
        int classes = Math.Min(c.ClassLabels.Length, 64), m = Math.Min(c.MemoryTokens, 8), t = Math.Min(c.QueryTokens, 8);
        var tensors = new Dictionary<string, Tensor>();
        if (m > 0) tensors["memory"] = new Tensor([l, m, d]);
        if (c.TrainClassToken || c.Masked) tensors["cls_token"] = new Tensor([1, 1, d]);
        int head = d;
        if (c.Method is TuningMethod.Vqt or TuningMethod.VqtMemory) { tensors["queries"] = new Tensor([l, Math.Max(1, t), d]); head = d * (1 + l * Math.Max(1, t)); }
        tensors["head.weight"] = new Tensor([classes, head]);
        tensors["head.bias"] = new Tensor([classes]);
        if (c.Method == TuningMethod.Full)
            foreach (var (name, w) in backbone.Model.Parameters) if (!name.StartsWith("head.")) tensors["backbone." + name] = w;
        return tensors;
    }

    static Backbone TinyBackbone()
    {
        var vit = VisionTransformer.CreateRandom(new VitConfig { ImageSize = 16, PatchSize = 8, Dim = 16, Depth = 2, Heads = 2, MlpDim = 32, NumClasses = 0 }, 1);
        return new Backbone(vit, new PreprocessConfig { InputSize = 16 }, "tiny", Backbone.ComputeFingerprint(vit.Parameters));
    }

    /// <summary>Adapter configs of every method, written by the library itself for the tiny backbone.</summary>
    static byte[][] AdapterSeeds(Backbone backbone)
    {
        var seeds = new List<byte[]>();
        foreach (var (method, masked) in new[] { (TuningMethod.Memory, false), (TuningMethod.Memory, true), (TuningMethod.HeadOnly, false),
                     (TuningMethod.HeadAndClassToken, false), (TuningMethod.Full, false), (TuningMethod.Vqt, false), (TuningMethod.VqtMemory, false) })
        {
            var tuning = new TuningOptions { Method = method, Masked = masked, MemoryTokens = 2, QueryTokens = 2 };
            var model = tuning.CreateModel(backbone.Model, 3, 1);
            var a = Tuning.Adapter.From(model, backbone, tuning, ["a", "b", "c"], backbone.Preprocess);
            seeds.Add(Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(a.Config, Tuning.Adapter.Json)));
        }
        return [.. seeds];
    }

    /// <summary>Small IDX files (images and labels, plain and gzipped).</summary>
    static byte[][] IdxSeeds()
    {
        static byte[] Idx(int rank, int[] shape)
        {
            var b = new List<byte> { 0, 0, 8, (byte)rank };
            foreach (var d in shape) b.AddRange([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
            long n = shape.Aggregate(1L, (a, x) => a * x);
            for (long i = 0; i < n; i++) b.Add((byte)(i * 37));
            return [.. b];
        }
        static byte[] Gzip(byte[] data)
        {
            using var output = new MemoryStream();
            using (var gz = new GZipStream(output, CompressionLevel.Fastest)) gz.Write(data);
            return output.ToArray();
        }
        var images = Idx(3, [4, 5, 6]);
        var labels = Idx(1, [4]);
        return [images, labels, Gzip(images), Gzip(labels)];
    }
}
