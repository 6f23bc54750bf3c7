using System.CommandLine;
using MLNet.MemoryTokens.Cli.Commands;

namespace MLNet.MemoryTokens.Cli;

/// <summary>Entry point of the <c>mmt</c> tool.</summary>
public static class Program
{
    public static int Main(string[] args) => Build().Parse(args).Invoke();

    public static RootCommand Build()
    {
        var root = new RootCommand("MLNet.MemoryTokens: run pretrained Vision Transformers and tune them with memory tokens or visual query tuning, in managed C#.");
        root.Options.Add(CommonOptions.AllowNonFiniteWeights);
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EvaluateCommand.Create());
        root.Subcommands.Add(PredictCommand.Create());
        root.Subcommands.Add(FeaturizeCommand.Create());
        root.Subcommands.Add(ExportOnnxCommand.Create());
        root.Subcommands.Add(CheckParityCommand.Create());
        root.Subcommands.Add(Commands.Bench.BenchCommand.Create());
        return root;
    }
}
