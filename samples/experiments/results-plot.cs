#:package ScottPlot
// Draws docs/results.md's main table as accuracy against trainable parameters (log scale), one point per method:
//   dotnet run samples/experiments/results-plot.cs [docs/results.md] [docs/results-accuracy-vs-parameters]
// writes <stem>.png and <stem>.svg. The table is the data: re-run this after the table changes.
using System.Globalization;
using System.Text.RegularExpressions;
using ScottPlot;

string markdown = args.Length > 0 ? args[0] : "docs/results.md";
string stem = args.Length > 1 ? args[1] : "docs/results-accuracy-vs-parameters";
if (!File.Exists(markdown)) { Console.Error.WriteLine($"error: {markdown} not found (run from the repository root or pass the path)"); return 1; }

// The first table whose header starts "| method | trainable parameters | test accuracy |".
var rows = new List<(string Method, double Parameters, double Accuracy)>();
bool inTable = false;
foreach (var line in File.ReadLines(markdown))
{
    if (line.StartsWith("| method | trainable parameters | test accuracy", StringComparison.Ordinal)) { inTable = true; continue; }
    if (!inTable) continue;
    if (!line.StartsWith('|')) break;
    var cells = line.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
    if (cells[0].StartsWith("---", StringComparison.Ordinal)) continue;
    var accuracy = Regex.Match(cells[2], @"[\d.]+");
    rows.Add((cells[0], double.Parse(cells[1].Replace(",", ""), CultureInfo.InvariantCulture), double.Parse(accuracy.Value, CultureInfo.InvariantCulture)));
}
if (rows.Count == 0) { Console.Error.WriteLine($"error: no '| method | trainable parameters | test accuracy |' table in {markdown}"); return 1; }

var plot = new Plot();
double lo = Math.Floor(Math.Log10(rows.Min(r => r.Parameters))), hi = Math.Ceiling(Math.Log10(rows.Max(r => r.Parameters)));
double yLo = Math.Floor(rows.Min(r => r.Accuracy) - 1), yHi = Math.Ceiling(rows.Max(r => r.Accuracy) + 1);
// one marker per method: the family by shape (baselines, memory, VQT), the method by colour; names in the legend
var palette = new ScottPlot.Palettes.Category10();
int index = 0;
foreach (var (method, parameters, accuracy) in rows)
{
    var shape = method.StartsWith("VQT", StringComparison.OrdinalIgnoreCase) ? MarkerShape.FilledDiamond
        : method.StartsWith("memory", StringComparison.OrdinalIgnoreCase) ? MarkerShape.FilledCircle : MarkerShape.FilledSquare;
    var marker = plot.Add.Marker(Math.Log10(parameters), accuracy, shape, 12, palette.GetColor(index++));
    marker.LegendText = $"{method} ({accuracy:F2} %, {parameters.ToString("N0", CultureInfo.InvariantCulture)})";
}
plot.ShowLegend(Alignment.LowerRight);
// log-scale x axis: ticks at powers of ten, labelled with the parameter count
var ticks = new List<Tick>();
for (double e = lo; e <= hi; e++) ticks.Add(new Tick(e, Math.Pow(10, e).ToString("N0", CultureInfo.InvariantCulture)));
plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
plot.Axes.SetLimitsX(lo - 0.1, hi + 0.1);
plot.Axes.SetLimitsY(yLo, yHi);
plot.XLabel("trainable parameters (log scale)");
plot.YLabel("test accuracy (%)");
plot.Title("Fashion-MNIST, ViT-Ti/16 at 112 px (docs/results.md)");

Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(stem))!);
plot.SavePng(stem + ".png", 900, 560);
plot.SaveSvg(stem + ".svg", 900, 560);
Console.WriteLine($"wrote {stem}.png and {stem}.svg ({rows.Count} methods)");
return 0;
