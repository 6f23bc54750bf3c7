namespace MLNet.MemoryTokens.Training;

/// <summary>Classification quality of a model on a labelled set: accuracy, macro-F1, log-loss and the confusion matrix.</summary>
public sealed record ClassificationMetrics(double Accuracy, double MacroF1, double LogLoss, int[,] ConfusionMatrix, int Count)
{
    /// <summary>From logits [N, C] and true labels [N].</summary>
    public static ClassificationMetrics From(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes)
    {
        int n = labels.Length;
        var confusion = new int[classes, classes];
        double logLoss = CrossEntropy.Compute(logits, labels, classes, 0f, default);
        int correct = 0;
        for (int i = 0; i < n; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            confusion[labels[i], best]++;
            if (best == labels[i]) correct++;
        }
        double f1Sum = 0;
        for (int c = 0; c < classes; c++)
        {
            int tp = confusion[c, c], predicted = 0, actual = 0;
            for (int k = 0; k < classes; k++) { predicted += confusion[k, c]; actual += confusion[c, k]; }
            double precision = predicted == 0 ? 0 : (double)tp / predicted, recall = actual == 0 ? 0 : (double)tp / actual;
            f1Sum += precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        }
        return new ClassificationMetrics(n == 0 ? 0 : (double)correct / n, f1Sum / classes, logLoss, confusion, n);
    }

    /// <summary>The confusion matrix as nested arrays (rows: true class, columns: predicted), for JSON.</summary>
    public int[][] ConfusionRows()
    {
        int c = ConfusionMatrix.GetLength(0);
        return Enumerable.Range(0, c).Select(i => Enumerable.Range(0, c).Select(j => ConfusionMatrix[i, j]).ToArray()).ToArray();
    }
}
