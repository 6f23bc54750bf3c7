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

    /// <summary>A batch of cached images, widened to float32 one layer at a time into one reusable buffer: the cached step holds
    /// [B, N, 2D] for a single layer, not all L of them.</summary>
    public QueryTunedVit.KeyValues Load(IReadOnlyList<int> indices)
    {
        int d = _config.Dim, batch = indices.Count;
        foreach (var i in indices)
            if (!_filled[i]) throw new InvalidOperationException($"Image {i} is not in the VQT cache yet.");
        var cls = new float[batch * d];
        for (int b = 0; b < batch; b++)
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(ImageSpan(indices[b])[(_config.Depth * _config.NumTokens * 2 * d * _elementSize)..])[..d]
                .CopyTo(cls.AsSpan(b * d, d));
        return new CachedBatch(this, indices.ToArray(), cls);
    }

    float[] _layerBuffer = [];

    sealed class CachedBatch(KeyValueCache cache, int[] indices, float[] cls) : QueryTunedVit.KeyValues(cls, indices.Length, cache._config.NumTokens)
    {
        int _loaded = -1;
        public override int Layers => cache._config.Depth;

        public override float[] Layer(int layer)
        {
            var c = cache._config;
            int per = c.NumTokens * 2 * c.Dim, batch = indices.Length, size = cache._elementSize;
            if (cache._layerBuffer.Length < batch * per) cache._layerBuffer = GC.AllocateUninitializedArray<float>(batch * per, pinned: true);
            var buffer = cache._layerBuffer;
            if (_loaded == layer && ReferenceEquals(cache._current, this)) return buffer;
            var type = cache.DType switch { TensorDType.F16 => ElementType.F16, TensorDType.BF16 => ElementType.BF16, _ => ElementType.F32 };
            Kernels.Parallelism.For(0, batch, b =>
                ElementConversion.ToSingle(type, cache.ImageSpan(indices[b]).Slice(layer * per * size, per * size), buffer.AsSpan(b * per, per)));
            _loaded = layer;
            cache._current = this;
            return buffer;
        }
    }

    object? _current;

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
