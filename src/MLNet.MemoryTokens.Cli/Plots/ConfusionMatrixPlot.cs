using ScottPlot;

namespace MLNet.MemoryTokens.Cli.Plots;

/// <summary>A confusion matrix as a heatmap (rows: true class, top to bottom; columns: predicted), each cell labelled with
/// its count and coloured by the share of its row (so rare classes read as clearly as common ones).</summary>
internal static class ConfusionMatrixPlot
{
    public static Plot Create(int[,] confusion, IReadOnlyList<string> labels, string title)
    {
        int n = confusion.GetLength(0);
        if (n == 0 || confusion.GetLength(1) != n || labels.Count != n)
            throw new ArgumentException($"A confusion matrix of {n}×{confusion.GetLength(1)} does not match {labels.Count} labels.");
        var share = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            double total = 0;
            for (int j = 0; j < n; j++) total += confusion[i, j];
            for (int j = 0; j < n; j++) share[i, j] = total == 0 ? 0 : confusion[i, j] / total;
        }
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(share);   // row 0 of the array is drawn at the top
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.Extent = new CoordinateRect(0, n - 1, 0, n - 1);   // the centres of the corner cells: cell (i, j) centred on (j, n − 1 − i)
        plot.Add.ColorBar(heatmap);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                var text = plot.Add.Text(confusion[i, j].ToString(System.Globalization.CultureInfo.InvariantCulture), j, n - 1 - i);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontColor = share[i, j] > 0.5 ? Colors.Black : Colors.White;
                text.LabelFontSize = n > 12 ? 9 : 12;
            }
        double[] positions = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, labels.ToArray());
        plot.Axes.Left.SetTicks(positions, labels.Reverse().ToArray());
        if (labels.Max(l => l.Length) > 6)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
            plot.Axes.Bottom.MinimumSize = 20 + 7 * labels.Max(l => l.Length);   // room for the slanted names and the axis label
        }
        plot.XLabel("predicted class");
        plot.YLabel("true class");
        plot.Title(title + "\ncolour: share of the true class");
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        return plot;
    }
}
