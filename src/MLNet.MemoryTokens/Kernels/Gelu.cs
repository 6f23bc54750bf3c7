using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), forward and backward; erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7).</summary>
public static unsafe class Gelu
{
    const float InvSqrt2 = 0.70710678118654752f;
    const float InvSqrt2Pi = 0.39894228040143268f;
    // A&S 7.1.26: erf(x) = 1 - (a1 t + a2 t² + a3 t³ + a4 t⁴ + a5 t⁵) e^{-x²}, t = 1 / (1 + p x), x ≥ 0.
    const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    /// <summary>erf(x) in single precision, the scalar twin of the vector path.</summary>
    public static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        float t = 1f / (1f + P * ax);
        float poly = ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t;
        float y = 1f - poly * MathF.Exp(-ax * ax);
        return MathF.CopySign(y, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Erf(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + Vector512.Create(P) * ax);
        var poly = Vector512.FusedMultiplyAdd(Vector512.Create(A5), t, Vector512.Create(A4));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A3));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A2));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A1));
        poly *= t;
        var y = Vector512<float>.One - poly * Vector512.Exp(-(ax * ax));
        return Vector512.CopySign(y, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Erf(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(P) * ax);
        var poly = Vector256.FusedMultiplyAdd(Vector256.Create(A5), t, Vector256.Create(A4));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A3));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A2));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A1));
        poly *= t;
        var y = Vector256<float>.One - poly * Vector256.Exp(-(ax * ax));
        return Vector256.CopySign(y, x);
    }

    /// <summary>out = gelu(inp), element-wise; out may alias inp.</summary>
    public static void Forward(Span<float> output, ReadOnlySpan<float> input)
    {
        if (output.Length < input.Length) throw new ArgumentException("GELU output is shorter than its input.");
        fixed (float* po = output) fixed (float* pi = input) ForwardRange(po, pi, input.Length, parallel: true);
    }

    /// <summary>Pointer form for fused callers; runs on the calling thread when <paramref name="parallel"/> is false.</summary>
    internal static void ForwardRange(float* output, float* input, int length, bool parallel)
    {
        if (parallel && length >= 1 << 15) Parallelism.ForChunks(length / 16, 1024, (s, e) => ForwardSerial(output + s * 16, input + s * 16, (e == length / 16 ? length : e * 16) - s * 16));
        else ForwardSerial(output, input, length);
    }

    static void ForwardSerial(float* output, float* input, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
            {
                var x = Vector512.Load(input + i);
                (Vector512.Create(0.5f) * x * (Vector512<float>.One + Erf(x * Vector512.Create(InvSqrt2)))).Store(output + i);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8)
            {
                var x = Vector256.Load(input + i);
                (Vector256.Create(0.5f) * x * (Vector256<float>.One + Erf(x * Vector256.Create(InvSqrt2)))).Store(output + i);
            }
        for (; i < n; i++)
        {
            float x = input[i];
            output[i] = 0.5f * x * (1f + Erf(x * InvSqrt2));
        }
    }

    /// <summary>dinp += dout · gelu'(inp), gelu'(x) = Φ(x) + x·φ(x).</summary>
    public static void Backward(Span<float> dInput, ReadOnlySpan<float> input, ReadOnlySpan<float> dOutput)
    {
        if (dInput.Length < input.Length || dOutput.Length < input.Length) throw new ArgumentException("GELU backward spans differ in length.");
        fixed (float* pd = dInput) fixed (float* pi = input) fixed (float* pg = dOutput)
        {
            float* d = pd, x = pi, g = pg;
            int n = input.Length;
            if (n >= 1 << 15) Parallelism.ForChunks(n / 16, 1024, (s, e) => BackwardSerial(d + s * 16, x + s * 16, g + s * 16, (e == n / 16 ? n : e * 16) - s * 16));
            else BackwardSerial(d, x, g, n);
        }
    }

    static void BackwardSerial(float* dInput, float* input, float* dOutput, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
            {
                var x = Vector512.Load(input + i);
                var cdf = Vector512.Create(0.5f) * (Vector512<float>.One + Erf(x * Vector512.Create(InvSqrt2)));
                var pdf = Vector512.Create(InvSqrt2Pi) * Vector512.Exp(Vector512.Create(-0.5f) * x * x);
                var grad = Vector512.FusedMultiplyAdd(x, pdf, cdf);
                Vector512.FusedMultiplyAdd(grad, Vector512.Load(dOutput + i), Vector512.Load(dInput + i)).Store(dInput + i);
            }
        for (; i < n; i++)
        {
            float x = input[i];
            float cdf = 0.5f * (1f + Erf(x * InvSqrt2));
            float pdf = InvSqrt2Pi * MathF.Exp(-0.5f * x * x);
            dInput[i] += (cdf + x * pdf) * dOutput[i];
        }
    }
}
