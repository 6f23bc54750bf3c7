namespace MLNet.MemoryTokens.Training;

/// <summary>Softmax cross-entropy with label smoothing (PyTorch's definition), forward and backward in one pass.</summary>
public static class CrossEntropy
{
    /// <summary>Mean loss over the batch of −Σ_c q_c log p_c, q = (1−ε)·onehot + ε/C; writes dLoss/dlogits = (p − q)/B.</summary>
    /// <param name="logits">[B, C]</param>
    /// <param name="labels">[B] class indices in [0, C)</param>
    /// <param name="dLogits">[B, C] written (not accumulated), or empty to skip.</param>
    public static double Compute(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, float labelSmoothing, Span<float> dLogits)
    {
        int batch = labels.Length;
        if (logits.Length != batch * classes) throw new ArgumentException($"logits has {logits.Length} elements, expected [{batch}, {classes}].");
        if (labelSmoothing < 0 || labelSmoothing >= 1) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "Label smoothing must be in [0, 1).");
        bool grad = !dLogits.IsEmpty;
        double total = 0;
        Span<float> p = classes <= 4096 ? stackalloc float[classes] : new float[classes];
        for (int b = 0; b < batch; b++)
        {
            int y = labels[b];
            if ((uint)y >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), y, $"Label {y} of row {b} is outside [0, {classes}).");
            var row = logits.Slice(b * classes, classes);
            double max = double.NegativeInfinity;
            foreach (var v in row) max = Math.Max(max, v);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(row[c] - max);
            double logSum = max + Math.Log(sum);
            double smooth = labelSmoothing / classes, rowLoss = 0;
            for (int c = 0; c < classes; c++)
            {
                double q = smooth + (c == y ? 1 - labelSmoothing : 0);
                double logp = row[c] - logSum;
                rowLoss -= q * logp;
                if (grad) dLogits[b * classes + c] = (float)((Math.Exp(logp) - q) / batch);
            }
            total += rowLoss;
        }
        return total / batch;
    }
}
