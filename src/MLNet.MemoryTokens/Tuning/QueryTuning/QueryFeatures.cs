using System.Numerics.Tensors;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>The VQT head input, forward and backward: F = [ĉ | ô_1 | … | ô_L] with ĉ the L2-normalised pooled output [D] (the final-norm class token, or the backbone's pooling) and
/// ô_l the L2-normalised flattened query outputs of layer l [T·D] (each part normalised on its own, as the official code).</summary>
internal sealed class QueryFeatures(int dim, int depth, int queryTokens)
{
    public int FeatureDim { get; } = dim * (1 + depth * queryTokens);
    int Part => queryTokens * dim;
    float[] _features = [], _norms = [];
    int _batch;

    public float[] Features => _features;

    /// <param name="cls">[B, D]</param><param name="outputs">per layer [B, T·D]</param>
    public float[] Forward(ReadOnlySpan<float> cls, IReadOnlyList<float[]> outputs, int batch)
    {
        int f = FeatureDim;
        _batch = batch;
        if (_features.Length != batch * f) { _features = new float[batch * f]; _norms = new float[batch * (1 + depth)]; }
        for (int b = 0; b < batch; b++)
        {
            var fb = _features.AsSpan(b * f, f);
            _norms[b * (1 + depth)] = Normalize(cls.Slice(b * dim, dim), fb[..dim]);
            for (int l = 0; l < depth; l++)
                _norms[b * (1 + depth) + 1 + l] = Normalize(outputs[l].AsSpan(b * Part, Part), fb.Slice(dim + l * Part, Part));
        }
        return _features;
    }

    /// <summary>dout_l [B, T·D] for layer l from dF [B, F]: dx = (dy − y (y·dy)) / ‖x‖; written.</summary>
    public void BackwardLayer(ReadOnlySpan<float> dF, int layer, Span<float> dOut)
    {
        int f = FeatureDim;
        for (int b = 0; b < _batch; b++)
            NormalizeBackward(dOut.Slice(b * Part, Part), _features.AsSpan(b * f + dim + layer * Part, Part), dF.Slice(b * f + dim + layer * Part, Part), _norms[b * (1 + depth) + 1 + layer]);
    }

    /// <summary>dcls [B, D] from dF: written.</summary>
    public void BackwardClassToken(ReadOnlySpan<float> dF, Span<float> dCls)
    {
        int f = FeatureDim;
        for (int b = 0; b < _batch; b++)
            NormalizeBackward(dCls.Slice(b * dim, dim), _features.AsSpan(b * f, dim), dF.Slice(b * f, dim), _norms[b * (1 + depth)]);
    }

    /// <summary>y = x / max(‖x‖, 1e-12) (F.normalize); returns the divisor.</summary>
    static float Normalize(ReadOnlySpan<float> x, Span<float> y)
    {
        float n = MathF.Max(TensorPrimitives.Norm(x), 1e-12f);
        TensorPrimitives.Multiply(x, 1f / n, y);
        return n;
    }

    static void NormalizeBackward(Span<float> dx, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, float n)
    {
        float dot = TensorPrimitives.Dot(y, dy);
        TensorPrimitives.MultiplyAdd(y, -dot, dy, dx);
        TensorPrimitives.Multiply(dx, 1f / n, dx);
    }
}
