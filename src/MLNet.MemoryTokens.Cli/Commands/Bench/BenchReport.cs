namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary>Prints figure rows as a table: ours (the managed engine), the TorchSharp backend's (with <c>--backend torchsharp</c>),
/// PyTorch's, and ours relative to each (ours/theirs, or theirs/ours where lower is better: above 1, ours is better).</summary>
internal static class BenchReport
{
    public static void Print(IEnumerable<(string Name, double Ours, double? Torch, bool HigherIsBetter)> rows) =>
        Print(rows.Select(r => (r.Name, r.Ours, (double?)null, r.Torch, r.HigherIsBetter)));

    public static void Print(IEnumerable<(string Name, double Ours, double? TorchSharp, double? Torch, bool HigherIsBetter)> rows)
    {
        var list = rows.ToList();
        bool sharp = list.Any(r => r.TorchSharp is not null);
        static string Figure(double? v) => v is double x ? x.ToString("F1") : "-";
        static string Ratio(double ours, double? theirs, bool higher) =>
            theirs is double t && t > 0 && ours > 0 ? $"{(higher ? ours / t : t / ours):F2}x" : "-";
        Console.WriteLine(sharp
            ? $"{"figure",-28} {"managed",12} {"TorchSharp",12} {"PyTorch",12} {"vs TorchSharp",14} {"vs PyTorch",11}"
            : $"{"figure",-28} {"ours",12} {"PyTorch",12} {"speed-up",9}");
        foreach (var (name, ours, torchSharp, torch, higher) in list)
            Console.WriteLine(sharp
                ? $"{name,-28} {ours,12:F1} {Figure(torchSharp),12} {Figure(torch),12} {Ratio(ours, torchSharp, higher),14} {Ratio(ours, torch, higher),11}"
                : $"{name,-28} {ours,12:F1} {Figure(torch),12} {Ratio(ours, torch, higher),9}");
    }
}
