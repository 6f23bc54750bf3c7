using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Training;

public class OptimizerTests
{
    [Fact]
    public void AdamWIsTheDecoupledAdamUpdateBitForBit()
    {
        // 70,001 values: several parallel chunks, vector lanes and a scalar tail; three steps against the textbook loop
        var data = Numerics.Random(70_001, 3);
        var value = new Tensor([70_001, 1], (float[])data.Clone());
        var grad = new Tensor([70_001, 1]);
        var p = new TrainableParameter("blocks.0.mlp.fc1.weight", value, grad);
        var opt = new AdamW([p], weightDecay: 0.05f);
        var (m, v, expected) = (new float[data.Length], new float[data.Length], (float[])data.Clone());
        for (int step = 1; step <= 3; step++)
        {
            Numerics.Random(data.Length, 10 + step).CopyTo(grad.Data, 0);
            float lr = 1e-3f * step;
            opt.Step([p], lr);
            float bc1 = 1f - MathF.Pow(0.9f, step), bc2 = 1f - MathF.Pow(0.999f, step), decay = 1f - lr * 0.05f;
            for (int i = 0; i < expected.Length; i++)
            {
                float g = grad.Data[i];
                m[i] = 0.9f * m[i] + (1f - 0.9f) * g;
                v[i] = 0.999f * v[i] + (1f - 0.999f) * g * g;
                expected[i] = expected[i] * decay - lr * (m[i] / bc1) / (MathF.Sqrt(v[i] / bc2) + 1e-8f);
            }
            Assert.Equal(expected, value.Data);
        }
    }
}
