using MLNet.MemoryTokens.Training;
using ScottPlot;

namespace MLNet.MemoryTokens.Cli.Plots;

/// <summary>Loss (left axis) and accuracy (right axis) per epoch of a training run, train and validation.</summary>
internal static class TrainingCurvePlot
{
    /// <summary>File stem inside the adapter folder: <c>training_curve.png</c> and <c>training_curve.svg</c>.</summary>
    public const string FileStem = "training_curve";

    public static Plot Create(IReadOnlyList<EpochMetrics> history, string title)
    {
        ArgumentNullException.ThrowIfNull(history);
        if (history.Count == 0) throw new ArgumentException("No epochs to plot.", nameof(history));
        var plot = new Plot();
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        var trainLoss = plot.Add.Scatter(epochs, history.Select(h => h.TrainLoss).ToArray());
        trainLoss.LegendText = "train loss";
        trainLoss.Color = Colors.C0;
        var trainAccuracy = plot.Add.Scatter(epochs, history.Select(h => 100 * h.TrainAccuracy).ToArray());
        trainAccuracy.LegendText = "train accuracy (%)";
        trainAccuracy.Color = Colors.C1;
        trainAccuracy.Axes.YAxis = plot.Axes.Right;
        if (history.All(h => h.ValidationLoss is not null && h.ValidationAccuracy is not null))
        {
            var validationLoss = plot.Add.Scatter(epochs, history.Select(h => h.ValidationLoss!.Value).ToArray());
            validationLoss.LegendText = "validation loss";
            validationLoss.Color = Colors.C2;   // solid: Skia's SVG writer has no dashed lines
            validationLoss.MarkerShape = MarkerShape.OpenSquare;
            var validationAccuracy = plot.Add.Scatter(epochs, history.Select(h => 100 * h.ValidationAccuracy!.Value).ToArray());
            validationAccuracy.LegendText = "validation accuracy (%)";
            validationAccuracy.Color = Colors.C3;
            validationAccuracy.MarkerShape = MarkerShape.OpenSquare;
            validationAccuracy.Axes.YAxis = plot.Axes.Right;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.Axes.Left.Label.Text = "loss (cross-entropy)";
        plot.Axes.Right.Label.Text = "accuracy (%)";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.ShowLegend(Alignment.MiddleRight);
        return plot;
    }
}
