namespace MLNet.MemoryTokens.Cli.Commands.Bench;

/// <summary>Prints figure rows as a table: ours (the managed engine), each anchor's (the TorchSharp backend with
/// <c>--backend torchsharp</c>, ONNX Runtime, PyTorch), and per anchor the speed-up ours/anchor (anchor/ours where lower is
/// better, so above 1 always means ours is ahead).</summary>
internal static class BenchReport
{
    public static void Print(IEnumerable<(string Name, double Ours, double? Torch, bool HigherIsBetter)> rows) =>
        Print(["PyTorch"], rows.Select(r => (r.Name, r.Ours, new[] { r.Torch }, r.HigherIsBetter)));

    /// <summary>Rows with the TorchSharp backend's figure beside PyTorch's; its column only when some row has one.</summary>
    public static void Print(IEnumerable<(string Name, double Ours, double? TorchSharp, double? Torch, bool HigherIsBetter)> rows)
    {
        var list = rows.ToList();
        if (list.Any(r => r.TorchSharp is not null))
            Print(["TorchSharp", "PyTorch"], list.Select(r => (r.Name, r.Ours, new[] { r.TorchSharp, r.Torch }, r.HigherIsBetter)));
        else
            Print(list.Select(r => (r.Name, r.Ours, r.Torch, r.HigherIsBetter)));
    }

    public static void Print(IReadOnlyList<string> anchors, IEnumerable<(string Name, double Ours, double?[] Anchors, bool HigherIsBetter)> rows)
    {
        Console.WriteLine($"{"figure",-28} {"ours",12}" + string.Concat(anchors.Select(a => $" {a,12}")) + string.Concat(anchors.Select(a => $" {"vs " + Short(a),12}")));
        foreach (var (name, ours, values, higher) in rows)
        {
            string line = $"{name,-28} {ours,12:F1}";
            foreach (var v in values) line += $" {(v is double t ? t.ToString("F1") : "-"),12}";
            foreach (var v in values) line += $" {(v is double t && t > 0 && ours > 0 ? $"{(higher ? ours / t : t / ours):F2}x" : "-"),12}";
            Console.WriteLine(line);
        }
    }

    static string Short(string anchor) => anchor switch { "ONNX Runtime" => "ORT", _ => anchor };
}
