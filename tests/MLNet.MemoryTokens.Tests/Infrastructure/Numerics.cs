using MLNet.MemoryTokens.IO;
using Xunit;

namespace MLNet.MemoryTokens.Tests;

/// <summary>Comparison helpers for numeric tests: every failure names the tensor and its largest difference.</summary>
public static class Numerics
{
    static readonly Dictionary<string, IReadOnlyDictionary<string, Tensor>> Cache = new();

    /// <summary>Cross-entropy of a tuned model on a batch (label smoothing as the parity fixtures use); with
    /// <paramref name="backward"/>, the gradients are cleared and filled from it.</summary>
    public static double Loss(MLNet.MemoryTokens.Tuning.ITunedModel model, Tensor images, int[] labels, bool backward, float labelSmoothing = 0.1f)
    {
        var logits = model.Forward(images, keepForBackward: backward);
        var dLogits = new Tensor(logits.Shape);
        double loss = MLNet.MemoryTokens.Training.CrossEntropy.Compute(logits.Data, labels, model.NumClasses, labelSmoothing, dLogits.Data);
        if (backward) { MLNet.MemoryTokens.Tuning.TunedModels.ZeroGrad(model); model.Backward(dLogits); }
        return loss;
    }

    /// <summary>A PyTorch dump from tests/fixtures/parity (written by reference/make_parity_fixtures.py).</summary>
    public static IReadOnlyDictionary<string, Tensor> Parity(string file)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(file, out var t))
                Cache[file] = t = SafeTensorsFile.Read(TestPaths.Fixture("parity", file)).Tensors;
            return t;
        }
    }

    /// <summary>Asserts |a - e| ≤ atol + rtol·|e| elementwise; the message names the worst element.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        double worst = 0, worstAbs = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(actual[i]) && !double.IsNaN(expected[i])) { at = i; worst = double.PositiveInfinity; break; }
            double excess = diff / (atol + rtol * Math.Abs(expected[i]));
            if (excess > worst) { worst = excess; worstAbs = diff; at = i; }
        }
        if (Environment.GetEnvironmentVariable("MMT_PARITY_LOG") is { Length: > 0 } log)   // the maxima of every comparison, for before/after checks
            lock (Cache) File.AppendAllText(log, $"{what}\t{MaxAbsDiff(expected, actual):G9}\n");
        Assert.True(worst <= 1.0, $"{what}: max |diff| {worstAbs:G4} at [{at}] (expected {(at >= 0 ? expected[at] : 0):G6}, got {(at >= 0 ? actual[at] : 0):G6}); atol {atol}, rtol {rtol}");
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return x;
    }

    /// <summary>Central finite difference of a scalar loss with respect to x[i].</summary>
    public static double FiniteDifference(float[] x, int i, Func<double> loss, float h)
    {
        float old = x[i];
        x[i] = old + h; double up = loss();
        x[i] = old - h; double down = loss();
        x[i] = old;
        return (up - down) / (2.0 * h);
    }

    /// <summary>Directional finite-difference checks of a whole parameter tensor (per-element differences of a float32 model sit at
    /// its rounding noise): along the gradient the slope must equal ‖g‖ within 1 %, and along a random unit direction r it must
    /// equal g·r within 1 % of ‖g‖.</summary>
    public static void AssertDirectionalDerivatives(float[] x, float[] grad, Func<double> loss, string what, float h = 1e-2f, int seed = 1)
    {
        double norm = Math.Sqrt(Dot(grad, grad));
        Assert.True(norm > 0, $"{what}: gradient is zero");
        var rng = new Random(seed);
        var r = new double[x.Length];
        for (int i = 0; i < r.Length; i++) r[i] = MLNet.MemoryTokens.Model.VisionTransformer.Gaussian(rng);
        double rn = Math.Sqrt(r.Sum(v => v * v));
        foreach (var (name, dir) in new[] { ("gradient", grad.Select(g => g / norm).ToArray()), ("random", r.Select(v => v / rn).ToArray()) })
        {
            var x0 = (float[])x.Clone();
            double Along(double t) { for (int i = 0; i < x.Length; i++) x[i] = (float)(x0[i] + t * dir[i]); return loss(); }
            double fd = (Along(h) - Along(-h)) / (2.0 * h);
            x0.CopyTo(x, 0);
            double analytic = 0;
            for (int i = 0; i < x.Length; i++) analytic += grad[i] * dir[i];
            Assert.True(Math.Abs(fd - analytic) <= 1e-2 * norm,
                $"{what} along the {name} direction: analytic {analytic:G6}, finite difference {fd:G6} (‖g‖ = {norm:G4})");
        }
    }

    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
