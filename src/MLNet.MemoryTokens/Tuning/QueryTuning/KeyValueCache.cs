using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;
using System.Text;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>What VQT reads from the frozen backbone for every training image — per layer the original tokens' keys and values,
/// and the final-norm class token — computed once (in the first epoch) and reused in every later one.</summary>
/// <remarks>
/// Layout per image: L × N × 2D elements of <see cref="DType"/> (k then v per token), then D float32 (the class token).
/// Storage is one memory-mapped region: anonymous (RAM) when the size is within the budget, else a file. A file cache starts
/// with a header naming the backbone fingerprint, input size, data-set hash and dtype; a file written for anything else is
/// rebuilt, never reused silently.
/// </remarks>
public sealed unsafe class KeyValueCache : IDisposable
{
    const string Magic = "MMT-VQT-KV/1";
    const int HeaderBytes = 4096;
    public int Count { get; }
    public TensorDType DType { get; }
    public long BytesPerImage { get; }
    public long TotalBytes => BytesPerImage * Count;
    /// <summary>The backing file, or null when the cache lives in memory.</summary>
    public string? FilePath { get; }
    /// <summary>True when a file cache written earlier for the same backbone, size and data was opened (every image present).</summary>
    public bool Reused { get; }

    readonly VitConfig _config;
    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly byte* _base;
    readonly bool[] _filled;
    readonly int _elementSize;

    /// <summary>Bytes one image takes for this backbone and dtype.</summary>
    public static long ImageBytes(VitConfig c, TensorDType dtype) =>
        (long)c.Depth * c.NumTokens * 2 * c.Dim * ElementSize(dtype) + (long)c.Dim * 4;

    static int ElementSize(TensorDType t) => t == TensorDType.F32 ? 4 : 2;

    /// <param name="identity">Backbone fingerprint, input size and data-set hash joined: what a file cache must match to be reused.</param>
    /// <param name="budgetBytes">Largest in-memory cache; above it the cache is a file in <paramref name="directory"/> (default: the temp folder).</param>
    public KeyValueCache(int count, VitConfig config, TensorDType dtype, long budgetBytes, string? directory, string identity)
    {
        Count = count; DType = dtype; _config = config;
        _elementSize = ElementSize(dtype);
        BytesPerImage = ImageBytes(config, dtype);
        _filled = new bool[count];
        long size = HeaderBytes + TotalBytes;
        if (directory is null && TotalBytes <= budgetBytes)
        {
            _map = MemoryMappedFile.CreateNew(null, size);
        }
        else
        {
            var dir = directory ?? Path.GetTempPath();
            Directory.CreateDirectory(dir);
            var name = "vqt-cache-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity + dtype)))[..16] + ".bin";
            FilePath = Path.Combine(dir, name);
            var header = HeaderText(identity, count, dtype);
            bool matches = File.Exists(FilePath) && new FileInfo(FilePath).Length == size && ReadHeader(FilePath) == header;
            if (!matches && File.Exists(FilePath)) File.Delete(FilePath);   // written for something else: rebuild
            try
            {
                _map = MemoryMappedFile.CreateFromFile(FilePath, FileMode.OpenOrCreate, null, size);
            }
            catch (IOException e)
            {
                throw new IOException($"Could not create the VQT cache file '{FilePath}' ({size / 1e9:F2} GB): {e.Message} Free disk space or pass a cache folder elsewhere.", e);
            }
            Reused = matches;
            if (!matches) WriteHeader(header);
        }
        _view = _map.CreateViewAccessor(0, size);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        if (Reused) Array.Fill(_filled, true);
    }

    static string HeaderText(string identity, int count, TensorDType dtype) => $"{Magic}\n{identity}\ncount={count}\ndtype={dtype}\n";

    static string ReadHeader(string path)
    {
        using var f = File.OpenRead(path);
        var buf = new byte[HeaderBytes];
        f.ReadExactly(buf);
        int end = Array.IndexOf(buf, (byte)0);
        return Encoding.UTF8.GetString(buf, 0, end < 0 ? buf.Length : end);
    }

    void WriteHeader(string header)
    {
        using var view = _map.CreateViewAccessor(0, HeaderBytes);
        var bytes = Encoding.UTF8.GetBytes(header);
        if (bytes.Length >= HeaderBytes) throw new ArgumentException("Cache identity too long.");
        view.WriteArray(0, bytes, 0, bytes.Length);
        view.Write(bytes.Length, (byte)0);
    }

    public bool IsFilled(int index) => _filled[index];
    public bool AllFilled => Array.TrueForAll(_filled, f => f);

    Span<byte> ImageSpan(int index) => new(_base + HeaderBytes + index * BytesPerImage, checked((int)BytesPerImage));

    /// <summary>Stores sample <paramref name="b"/> of a captured batch as image <paramref name="index"/>.</summary>
    public void Store(int index, QueryTunedVit.KeyValues kv, int b)
    {
        var dst = ImageSpan(index);
        int per = _config.NumTokens * 2 * _config.Dim, d = _config.Dim;
        for (int l = 0; l < _config.Depth; l++)
            ElementConversion.FromSingle(DType, kv.Layer(l).AsSpan(b * per, per), dst.Slice(l * per * _elementSize, per * _elementSize));
        kv.ClassToken.AsSpan(b * d, d).CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(dst[(_config.Depth * per * _elementSize)..]));
        _filled[index] = true;
    }

    QueryTunedVit.KeyValues? _batch;
    float[][] _layers = [];

    /// <summary>The batch of cached images as float32 key/values, exactly what was stored (dtype-rounded), every layer widened
    /// once per step (forward and backward both read each layer; widening twice would cost more than the query paths).
    /// The arrays are reused by the next call.</summary>
    public QueryTunedVit.KeyValues Load(IReadOnlyList<int> indices)
    {
        int per = _config.NumTokens * 2 * _config.Dim, d = _config.Dim, batch = indices.Count;
        foreach (var i in indices)
            if (!_filled[i]) throw new InvalidOperationException($"Image {i} is not in the VQT cache yet.");
        if (_batch is null || _batch.Batch != batch)
        {
            _layers = Enumerable.Range(0, _config.Depth).Select(_ => GC.AllocateUninitializedArray<float>(batch * per, pinned: true)).ToArray();
            _batch = QueryTunedVit.Captured(_layers, new float[batch * d], batch, _config.NumTokens);
        }
        var cls = _batch.ClassToken;
        var type = DType switch { TensorDType.F16 => ElementType.F16, TensorDType.BF16 => ElementType.BF16, _ => ElementType.F32 };
        Kernels.Parallelism.For(0, batch, b =>
        {
            var src = ImageSpan(indices[b]);
            for (int l = 0; l < _config.Depth; l++)
                ElementConversion.ToSingle(type, src.Slice(l * per * _elementSize, per * _elementSize), _layers[l].AsSpan(b * per, per));
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src[(_config.Depth * per * _elementSize)..])[..d].CopyTo(cls.AsSpan(b * d, d));
        });
        return _batch;
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
