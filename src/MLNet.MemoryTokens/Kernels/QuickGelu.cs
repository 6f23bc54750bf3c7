using System.Numerics.Tensors;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>CLIP's QuickGELU, x·σ(1.702·x) (OpenAI CLIP's MLP activation), forward and backward.</summary>
public static class QuickGelu
{
    const float Alpha = 1.702f;

    /// <summary>out = x·σ(αx); with <paramref name="derivative"/> also σ(αx) + αx·σ(αx)(1 − σ(αx)), what backward multiplies
    /// by. <paramref name="output"/> may alias <paramref name="input"/>.</summary>
    public static void Forward(Span<float> output, Span<float> derivative, ReadOnlySpan<float> input)
    {
        int n = input.Length;
        if (output.Length < n || (!derivative.IsEmpty && derivative.Length < n)) throw new ArgumentException("QuickGELU outputs are shorter than its input.");
        const int Chunk = 4096;
        Span<float> s = stackalloc float[Chunk];
        for (int at = 0; at < n; at += Chunk)
        {
            int len = Math.Min(Chunk, n - at);
            var x = input.Slice(at, len);
            var sig = s[..len];
            TensorPrimitives.Multiply(x, Alpha, sig);
            TensorPrimitives.Sigmoid(sig, sig);                                    // σ(αx)
            if (!derivative.IsEmpty)
            {
                var dv = derivative.Slice(at, len);
                TensorPrimitives.Subtract(1f, sig, dv);                             // 1 − σ
                TensorPrimitives.Multiply(dv, sig, dv);                             // σ(1 − σ)
                TensorPrimitives.Multiply(dv, x, dv);                               // x σ(1 − σ)
                TensorPrimitives.MultiplyAdd(dv, Alpha, sig, dv);                   // σ + αx σ(1 − σ)
            }
            TensorPrimitives.Multiply(x, sig, output.Slice(at, len));               // x σ(αx)
        }
    }

    /// <summary>dinp = dout · QuickGELU'(inp) (recomputed from the input).</summary>
    public static void Backward(Span<float> dInput, ReadOnlySpan<float> input, ReadOnlySpan<float> dOutput)
    {
        if (dInput.Length < input.Length || dOutput.Length < input.Length) throw new ArgumentException("QuickGELU backward spans differ in length.");
        var derivative = new float[input.Length];
        Forward(new float[input.Length], derivative, input);
        TensorPrimitives.Multiply(dOutput[..input.Length], derivative, dInput[..input.Length]);
    }
}
