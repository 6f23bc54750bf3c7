using MLNet.MemoryTokens.Fuzz;

// dotnet run --project tests/MLNet.MemoryTokens.Fuzz -c Release -- [--minutes 10 | --inputs N] [--seed S] [--target jpeg,png,…] [--findings dir]
// Exit code 0 when no input crashed or hung, 1 otherwise; the figures go to stdout (docs/reliability.md records a run).
var options = new FuzzOptions { Log = Console.WriteLine, FindingsFolder = "fuzz-findings" };
string? fixtures = null;
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    if (args[i] == "--fixtures") { fixtures = Next(); continue; }
    options = args[i] switch
    {
        "--minutes" => options with { Duration = TimeSpan.FromMinutes(double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture)) },
        "--inputs" => options with { InputsPerTarget = int.Parse(Next()) },
        "--seed" => options with { Seed = int.Parse(Next()) },
        "--target" => options with { Targets = Next().Split(',', StringSplitOptions.RemoveEmptyEntries) },
        "--findings" => options with { FindingsFolder = Next() },
        "--hang-seconds" => options with { HangTimeout = TimeSpan.FromSeconds(int.Parse(Next())) },
        var a => throw new ArgumentException($"unknown argument {a}: use --minutes, --inputs, --seed, --target, --findings, --fixtures, --hang-seconds"),
    };
}
fixtures ??= FindFixtures();
var scratch = Directory.CreateTempSubdirectory("mmt-fuzz-").FullName;
try
{
    var targets = FuzzTargets.All(fixtures, scratch);
    Console.WriteLine($"fuzzing {string.Join(", ", targets.Select(t => t.Name))} with seed {options.Seed}, " +
                      (options.Duration is TimeSpan d ? $"for {d.TotalMinutes:F1} min" : $"{options.InputsPerTarget:N0} inputs per target") +
                      $", {Environment.ProcessorCount} cores, .NET {Environment.Version}");
    var report = Fuzzer.Run(targets, options);
    Console.WriteLine(report.Table());
    return report.Crashes + report.Hangs == 0 ? 0 : 1;
}
finally { Directory.Delete(scratch, recursive: true); }

static string FindFixtures()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, "tests", "fixtures");
        if (Directory.Exists(candidate)) return candidate;
    }
    throw new DirectoryNotFoundException("tests/fixtures not found above the fuzzer; pass --fixtures <folder>.");
}
