using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Tuning.QueryTuning;

/// <summary>Where a <see cref="TorchKeyValueCache"/> lives.</summary>
public enum KeyValueCacheLocation
{
    /// <summary>In the compute device's memory (GPU memory on CUDA): no transfer per step.</summary>
    Device,
    /// <summary>In pinned (page-locked) host memory, copied to the GPU batch by batch: for caches larger than GPU memory.
    /// On the CPU this is plain host memory (pinning needs CUDA).</summary>
    PinnedHost,
}

/// <summary>What VQT reads from the frozen backbone for every training image — per layer the original tokens' keys/values
/// [N, 2D] in F16 or BF16, and the final-norm class token [D] in float32 — filled the first time an image is seen (the
/// TorchSharp counterpart of the engine's <c>KeyValueCache</c>; in memory only).</summary>
public sealed class TorchKeyValueCache : IDisposable
{
    public int Count { get; }
    public TensorDType DType { get; }
    public KeyValueCacheLocation Location { get; }
    /// <summary>Bytes the cache holds.</summary>
    public long TotalBytes { get; }

    readonly torch.Tensor[] _layers;   // [L][Count, N, 2D]
    readonly torch.Tensor _cls;        // [Count, D]
    readonly bool[] _filled;
    readonly Device _compute, _storage;

    public TorchKeyValueCache(int count, VitConfig c, TensorDType dtype, KeyValueCacheLocation location, Device compute)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "The cache needs at least one image.");
        var type = dtype switch
        {
            TensorDType.F16 => ScalarType.Float16,
            TensorDType.BF16 => ScalarType.BFloat16,
            TensorDType.F32 => ScalarType.Float32,
            _ => throw new ArgumentException($"A key/value cache holds F16, BF16 or F32, not {dtype}.", nameof(dtype)),
        };
        Count = count; DType = dtype; Location = location; _compute = compute;
        _storage = location == KeyValueCacheLocation.Device ? compute : CPU;
        bool pin = location == KeyValueCacheLocation.PinnedHost && compute.type == DeviceType.CUDA;
        torch.Tensor Alloc(long[] shape, ScalarType t)
        {
            var x = empty(shape, t, _storage).DetachFromDisposeScope();   // the cache outlives any step's scope
            if (!pin) return x;
            using (x) return x.pin_memory().DetachFromDisposeScope();
        }
        _layers = Enumerable.Range(0, c.Depth).Select(_ => Alloc([count, c.NumTokens, 2 * c.Dim], type)).ToArray();
        _cls = Alloc([count, c.Dim], ScalarType.Float32);
        _filled = new bool[count];
        TotalBytes = _layers.Sum(l => l.numel() * l.element_size()) + _cls.numel() * 4;
    }

    /// <summary>Bytes one image takes: per layer N keys and values of width D in the cache's dtype, and a float32 class token.</summary>
    public static long ImageBytes(VitConfig c, TensorDType dtype) => (long)c.Depth * c.NumTokens * 2 * c.Dim * (dtype == TensorDType.F32 ? 4 : 2) + 4L * c.Dim;

    public bool IsFilled(int index) => _filled[index];
    public bool AllFilled => Array.TrueForAll(_filled, f => f);

    /// <summary>Stores a backbone pass (<see cref="TorchQueryTunedVit.BackbonePass"/>) as images <paramref name="indices"/>.</summary>
    public void Store(IReadOnlyList<int> indices, IReadOnlyList<torch.Tensor> keyValues, torch.Tensor classToken)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var idx = Index(indices, _storage);
        for (int l = 0; l < _layers.Length; l++) _layers[l].index_copy_(0, idx, keyValues[l].to(_layers[l].dtype).to(_storage));
        _cls.index_copy_(0, idx, classToken.to(ScalarType.Float32).to(_storage));
        foreach (var i in indices) _filled[i] = true;
    }

    /// <summary>A batch on the compute device: per layer [B, N, 2D] in the cache's dtype (attention widens it), class tokens [B, D].</summary>
    public (torch.Tensor[] KeyValues, torch.Tensor ClassToken) Load(IReadOnlyList<int> indices)
    {
        foreach (var i in indices)
            if ((uint)i >= (uint)Count || !_filled[i]) throw new InvalidOperationException($"Image {i} is not in the VQT cache{((uint)i >= (uint)Count ? $" (it holds {Count})" : " yet")}.");
        using var scope = NewDisposeScope();
        var idx = Index(indices, _storage);
        var kv = _layers.Select(l => l.index_select(0, idx).to(_compute, non_blocking: true)).ToArray();
        var cls = _cls.index_select(0, idx).to(_compute, non_blocking: true);
        foreach (var t in kv) t.MoveToOuterDisposeScope();
        return (kv, scope.MoveToOuter(cls));
    }

    static torch.Tensor Index(IReadOnlyList<int> indices, Device device) => torch.tensor(indices.Select(i => (long)i).ToArray()).to(device);

    public void Dispose()
    {
        foreach (var l in _layers) l.Dispose();
        _cls.Dispose();
    }
}
