using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>Exact GELU, x·Φ(x) = ½·x·erfc(−x/√2), forward and backward.</summary>
/// <remarks>erfc by the Chebyshev fit of Numerical Recipes (erfcc: relative error below 1.2e-7 everywhere), its exp by
/// <see cref="Exponential"/>. Writing Φ through
/// erfc rather than 1 + erf keeps the negative tail accurate, where 1 + erf is tiny and an absolute-error erf loses digits.</remarks>
public static unsafe class Gelu
{
    const float InvSqrt2 = 0.70710678118654752f;
    const float InvSqrt2Pi = 0.39894228040143268f;
    const float C0 = -1.26551223f, C1 = 1.00002368f, C2 = 0.37409196f, C3 = 0.09678418f, C4 = -0.18628806f,
                C5 = 0.27886807f, C6 = -1.13520398f, C7 = 1.48851587f, C8 = -0.82215223f, C9 = 0.17087277f;

    /// <summary>erfc(z) in single precision, the scalar twin of the vector path.</summary>
    public static float Erfc(float z)
    {
        float az = MathF.Abs(z);
        float t = 1f / (1f + 0.5f * az);
        float poly = C0 + t * (C1 + t * (C2 + t * (C3 + t * (C4 + t * (C5 + t * (C6 + t * (C7 + t * (C8 + t * C9))))))));
        float r = t * Exponential.Exp(-az * az + poly);
        return z >= 0 ? r : 2f - r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Erfc(Vector512<float> z)
    {
        var az = Vector512.Abs(z);
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(Vector512.Create(0.5f), az, Vector512<float>.One);
        var poly = Vector512.FusedMultiplyAdd(Vector512.Create(C9), t, Vector512.Create(C8));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C7));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C6));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C5));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C4));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C3));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C2));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C1));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(C0));
        var r = t * Exponential.Exp(poly - az * az);
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(z, Vector512<float>.Zero), r, Vector512.Create(2f) - r);
    }

    /// <summary>gelu(x) for 16 lanes: the vector path every GELU in the engine goes through (also GEMM epilogues).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Forward(Vector512<float> x) => Vector512.Create(0.5f) * x * Erfc(x * Vector512.Create(-InvSqrt2));

    /// <summary>gelu(x) and gelu'(x) for 16 lanes from one erfc: what a training forward keeps so backward needs no erfc.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Forward(Vector512<float> x, out Vector512<float> derivative)
    {
        var erfc = Erfc(x * Vector512.Create(-InvSqrt2));
        var pdf = Vector512.Create(InvSqrt2Pi) * Exponential.Exp(Vector512.Create(-0.5f) * x * x);
        derivative = Vector512.FusedMultiplyAdd(x, pdf, Vector512.Create(0.5f) * erfc);   // the same bits as Derivative(x)
        return Vector512.Create(0.5f) * x * erfc;                                           // the same bits as Forward(x)
    }

    /// <summary>gelu'(x) = Φ(x) + x·φ(x) for 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Derivative(Vector512<float> x)
    {
        var cdf = Vector512.Create(0.5f) * Erfc(x * Vector512.Create(-InvSqrt2));
        var pdf = Vector512.Create(InvSqrt2Pi) * Exponential.Exp(Vector512.Create(-0.5f) * x * x);
        return Vector512.FusedMultiplyAdd(x, pdf, cdf);
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
                Forward(Vector512.Load(input + i)).Store(output + i);
            }
        for (; i < n; i++)
        {
            float x = input[i];
            output[i] = 0.5f * x * Erfc(-x * InvSqrt2);
        }
    }

    /// <summary>gelu'(x) = Φ(x) + x·φ(x), the scalar twin of the vector path.</summary>
    static float Derivative(float x) => 0.5f * Erfc(-x * InvSqrt2) + x * (InvSqrt2Pi * Exponential.Exp(-0.5f * x * x));

    /// <summary>out = gelu'(inp), element-wise (the multiplier GELU's backward applies); out may alias inp.</summary>
    public static void Derivative(Span<float> output, ReadOnlySpan<float> input)
    {
        if (output.Length < input.Length) throw new ArgumentException("GELU derivative output is shorter than its input.");
        fixed (float* po = output) fixed (float* pi = input)
        {
            int i = 0, n = input.Length;
            if (Vector512.IsHardwareAccelerated)
                for (; i <= n - 16; i += 16) Derivative(Vector512.Load(pi + i)).Store(po + i);
            for (; i < n; i++) po[i] = Derivative(pi[i]);
        }
    }

    /// <summary>dinp += dout · gelu'(inp) (or dinp = … when not <paramref name="accumulate"/>), gelu'(x) = Φ(x) + x·φ(x).</summary>
    public static void Backward(Span<float> dInput, ReadOnlySpan<float> input, ReadOnlySpan<float> dOutput, bool accumulate = true)
    {
        if (dInput.Length < input.Length || dOutput.Length < input.Length) throw new ArgumentException("GELU backward spans differ in length.");
        fixed (float* pd = dInput) fixed (float* pi = input) fixed (float* pg = dOutput)
        {
            float* d = pd, x = pi, g = pg;
            int n = input.Length;
            if (n >= 1 << 15) Parallelism.ForChunks(n / 16, 1024, (s, e) => BackwardSerial(d + s * 16, x + s * 16, g + s * 16, (e == n / 16 ? n : e * 16) - s * 16, accumulate));
            else BackwardSerial(d, x, g, n, accumulate);
        }
    }

    static void BackwardSerial(float* dInput, float* input, float* dOutput, int n, bool accumulate)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
            {
                var grad = Derivative(Vector512.Load(input + i));
                var dy = Vector512.Load(dOutput + i);
                (accumulate ? Vector512.FusedMultiplyAdd(grad, dy, Vector512.Load(dInput + i)) : grad * dy).Store(dInput + i);
            }
        for (; i < n; i++)
        {
            float g = Derivative(input[i]) * dOutput[i];
            dInput[i] = accumulate ? dInput[i] + g : g;
        }
    }
}
