namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary>Prints figure rows as a table: ours, PyTorch's, and ours/PyTorch (or PyTorch/ours where lower is better).</summary>
internal static class BenchReport
{
    public static void Print(IEnumerable<(string Name, double Ours, double? Torch, bool HigherIsBetter)> rows)
    {
        Console.WriteLine($"{"figure",-28} {"ours",12} {"PyTorch",12} {"speed-up",9}");
        foreach (var (name, ours, torch, higher) in rows)
        {
            string ratio = torch is double t && t > 0 && ours > 0 ? $"{(higher ? ours / t : t / ours):F2}x" : "-";
            Console.WriteLine($"{name,-28} {ours,12:F1} {(torch is double tt ? tt.ToString("F1") : "-"),12} {ratio,9}");
        }
    }
}
