using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;
using System.Text;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>What VQT reads from the frozen backbone for every training image — per layer the original tokens' keys and values,
/// and the backbone's pooled output (the final-norm class token, or what its pooling gives) — computed once (in the first epoch) and reused in every later one.</summary>
/// <remarks>
/// Layout per image: L × N × 2D elements of <see cref="DType"/> (k then v per token), then D float32 (the pooled output).
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
    readonly ElementType _elementType;

    /// <summary>Bytes one image takes for this backbone and dtype.</summary>
    public static long ImageBytes(VitConfig c, TensorDType dtype) =>
        (long)c.Depth * c.NumTokens * 2 * c.Dim * ElementSize(dtype) + (long)c.Dim * 4;

    static int ElementSize(TensorDType t) => ElementTypes.From(t).Size();

    /// <param name="identity">Backbone fingerprint, input size and data-set hash joined: what a file cache must match to be reused.</param>
    /// <param name="budgetBytes">Largest in-memory cache; above it the cache is a file in <paramref name="directory"/> (default: the temp folder).</param>
    public KeyValueCache(int count, VitConfig config, TensorDType dtype, long budgetBytes, string? directory, string identity)
    {
        Count = count; DType = dtype; _config = config;
        _elementSize = ElementSize(dtype);
        _elementType = ElementTypes.From(dtype);
        BytesPerImage = ImageBytes(config, dtype);
        Limits.Check("The number of cached images", count, 1, int.MaxValue);
        if (BytesPerImage > int.MaxValue)   // one image is read as one span
            throw new LimitExceededException($"One image's VQT cache entry would take {BytesPerImage:N0} bytes, beyond the limit of {int.MaxValue:N0}; use a smaller image size.");
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
            bool exists = File.Exists(FilePath);
            if (exists && !FileKind.WrittenByUs(FilePath))
                throw new OutputRefusedException(FilePath, $"Refusing to overwrite '{FilePath}': it is not a VQT cache written by MLNet.MemoryTokens. Remove it yourself or pass another --cache-dir.");
            bool matches = exists && new FileInfo(FilePath).Length == size && ReadHeader(FilePath) == header;
            if (!matches && exists) File.Delete(FilePath);   // our cache, written for something else: rebuild
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

    /// <summary>A cache file of ours: it starts with our magic line.</summary>
    public static FileArtifact FileKind { get; } = new("a VQT cache", p => OwnedContent.StartsWith(p, Encoding.UTF8.GetBytes(Magic + "\n")));

    /// <summary>Throws an <see cref="OutputRefusedException"/> unless a cache file can be made in <paramref name="directory"/>.</summary>
    public static void EnsureWritable(string directory)
    {
        string full = Path.GetFullPath(directory);
        if (File.Exists(full)) throw new OutputRefusedException(full, $"Refusing to use '{full}' as the VQT cache folder: it is a file.");
        for (var d = full; d is not null; d = Path.GetDirectoryName(d))
            if (Directory.Exists(d)) { AtomicFolder.Probe(d, "VQT cache", full); return; }
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

    Span<byte> ImageSpan(int index)
    {
        // a raw pointer into the mapping: an index outside [0, Count) would read or write past it
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"The cache holds {Count} images.");
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new(_base + HeaderBytes + index * BytesPerImage, checked((int)BytesPerImage));
    }

    /// <summary>Image <paramref name="index"/>'s pooled output [D] (the final-norm class token of a token-pooled model), stored after its L layers of keys/values.</summary>
    Span<float> ClassTokenSpan(int index) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(ImageSpan(index)[(_config.Depth * _config.NumTokens * 2 * _config.Dim * _elementSize)..])[.._config.Dim];

    float[] _row = [];

    /// <summary>Stores sample <paramref name="b"/> of a captured batch as image <paramref name="index"/>.</summary>
    public void Store(int index, QueryTunedVit.KeyValues kv, int b)
    {
        var dst = ImageSpan(index);
        int per = _config.NumTokens * 2 * _config.Dim, d = _config.Dim;
        if (kv.Layers != _config.Depth || kv.Tokens != _config.NumTokens) throw new ArgumentException($"Keys/values are for {kv.Tokens} tokens and {kv.Layers} layers; the cache holds {_config.NumTokens} and {_config.Depth}.");
        if (_row.Length != per) _row = new float[per];
        for (int l = 0; l < _config.Depth; l++)
        {
            kv.Layer(l).ReadSample(b, _row);
            ElementConversion.FromSingle(DType, _row, dst.Slice(l * per * _elementSize, per * _elementSize));
        }
        kv.ClassToken.AsSpan(b * d, d).CopyTo(ClassTokenSpan(index));
        _filled[index] = true;
    }

    /// <summary>Stores layer <paramref name="layer"/> of a backbone pass straight from its qkv rows [B, N, 3D] (k | v of each row)
    /// as images <paramref name="indices"/>, in parallel over the batch: no float32 copy of the batch's keys/values is made.
    /// An image counts as cached once its pooled output is stored too (<see cref="StoreClassToken"/>).</summary>
    internal void StoreLayer(int layer, float[] qkv, IReadOnlyList<int> indices)
    {
        int n = _config.NumTokens, d = _config.Dim, per = n * 2 * d, es = _elementSize;
        if (qkv.Length < (long)indices.Count * n * 3 * d) throw new ArgumentException($"qkv holds {qkv.Length} values; {indices.Count} images need {(long)indices.Count * n * 3 * d}.");
        Kernels.Parallelism.For(0, indices.Count, b =>
        {
            var dst = ImageSpan(indices[b]).Slice(layer * per * es, per * es);
            for (int r = 0; r < n; r++)
                ElementConversion.FromSingle(DType, qkv.AsSpan((b * n + r) * 3 * d + d, 2 * d), dst.Slice(r * 2 * d * es, 2 * d * es));
        });
    }

    /// <summary>Stores image <paramref name="index"/>'s pooled output [D], the last part of it: the image is cached.</summary>
    internal void StoreClassToken(int index, ReadOnlySpan<float> classToken)
    {
        classToken[.._config.Dim].CopyTo(ClassTokenSpan(index));
        _filled[index] = true;
    }

    internal VitConfig Config => _config;

    CachedBatch? _batch;

    /// <summary>A batch of cached images: pooled outputs copied out, keys/values read in place (attention widens each image's
    /// head to float32 as it reads it, so no float32 copy of the batch is made). Valid until the next call.</summary>
    public QueryTunedVit.KeyValues Load(IReadOnlyList<int> indices)
    {
        int d = _config.Dim, batch = indices.Count;
        foreach (var i in indices)
            if ((uint)i >= (uint)Count || !_filled[i]) throw new InvalidOperationException($"Image {i} is not in the VQT cache{((uint)i >= (uint)Count ? $" (it holds {Count})" : " yet")}.");
        if (_batch is null || _batch.Batch != batch) _batch = new CachedBatch(this, batch);
        for (int b = 0; b < batch; b++)
        {
            _batch.Images[b] = indices[b];
            ClassTokenSpan(indices[b]).CopyTo(_batch.ClassToken.AsSpan(b * d, d));
        }
        return _batch;
    }

    sealed class CachedBatch : QueryTunedVit.KeyValues
    {
        public readonly int[] Images;
        readonly CachedLayer[] _layers;
        public CachedBatch(KeyValueCache cache, int batch) : base(new float[batch * cache._config.Dim], batch, cache._config.NumTokens)
        {
            Images = new int[batch];
            _layers = Enumerable.Range(0, cache._config.Depth).Select(l => new CachedLayer(cache, this, l)).ToArray();
        }
        public override int Layers => _layers.Length;
        public override ExternalKeyValues Layer(int layer) => _layers[layer];
    }

    /// <summary>One layer's keys/values of a loaded batch, widened from the cache's dtype as attention asks.</summary>
    sealed class CachedLayer(KeyValueCache cache, CachedBatch batch, int layer) : ExternalKeyValues(cache._config.NumTokens, cache._config.Dim)
    {
        byte* Rows0(int sample)
        {
            ObjectDisposedException.ThrowIf(cache._disposed, cache);   // the mapping is gone: the pointer would dangle
            return cache._base + HeaderBytes + batch.Images[sample] * cache.BytesPerImage + (long)layer * Rows * 2 * Dim * cache._elementSize;
        }

        public override void ReadHead(int sample, int head, int headDim, Span<float> keys, Span<float> values)
        {
            if (keys.Length < Rows * headDim || values.Length < Rows * headDim) throw new ArgumentException("Key/value buffers too small.");
            if (head < 0 || headDim < 1 || (long)(head + 1) * headDim > Dim) throw new ArgumentOutOfRangeException(nameof(head), $"Head {head} of width {headDim} is outside a row of {Dim}.");
            int es = cache._elementSize;
            byte* row = Rows0(sample);
            fixed (float* k = keys) fixed (float* v = values)
                for (int r = 0; r < Rows; r++, row += 2 * Dim * es)
                {
                    Widen(row + head * headDim * es, k + r * headDim, headDim);
                    Widen(row + (Dim + head * headDim) * es, v + r * headDim, headDim);
                }
        }

        public override void ReadSample(int sample, Span<float> rows)
        {
            if (rows.Length < Rows * 2 * Dim) throw new ArgumentException("Row buffer too small.");
            fixed (float* p = rows) Widen(Rows0(sample), p, Rows * 2 * Dim);
        }

        // pointer forms of ElementConversion.ToSingle: called per 64-value head row, where the span form's set-up halved the step's speed
        void Widen(byte* src, float* dst, int n)
        {
            switch (cache._elementType)
            {
                case ElementType.F16: ElementConversion.HalfToSingle((ushort*)src, dst, n); break;
                case ElementType.BF16: ElementConversion.BFloat16ToSingle((ushort*)src, dst, n); break;
                default: Buffer.MemoryCopy(src, dst, (long)n * 4, (long)n * 4); break;
            }
        }
    }

    bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
