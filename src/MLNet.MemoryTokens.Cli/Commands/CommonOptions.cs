using System.CommandLine;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary>Options several commands share, defined once.</summary>
internal static class CommonOptions
{
    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "Checkpoint path (.safetensors with timm or Hugging Face names, or big_vision .npz) or a timm model id (downloaded to the cache).",
        Required = true,
    };

    public static Option<int?> Threads() => new("--threads") { Description = "Compute threads (default: all cores)." };

    public static Option<bool> Json() => new("--json") { Description = "One JSON object per line instead of a table." };

    /// <summary>On the root command, for every subcommand: load checkpoints and adapters whose weights hold NaN or ±∞.</summary>
    public static readonly Option<bool> AllowNonFiniteWeights = new("--allow-non-finite-weights")
    {
        Description = "Load checkpoints and adapters even when their weights hold NaN or infinity (refused by default).", Recursive = true,
    };

    /// <summary>Backbone options with the command line's --allow-non-finite-weights applied.</summary>
    public static BackboneOptions Weights(ParseResult r, BackboneOptions options) => options with { AllowNonFiniteWeights = r.GetValue(AllowNonFiniteWeights) };

    /// <summary>An adapter folder, its config checked against the schema; what the check noticed goes to stderr as warnings.</summary>
    public static Adapter LoadAdapter(ParseResult r, string directory)
    {
        var adapter = Adapter.Load(directory, r.GetValue(AllowNonFiniteWeights));
        foreach (var w in adapter.Warnings) Console.Error.WriteLine($"warning: {w}");
        return adapter;
    }

    public static void ApplyThreads(int? threads)
    {
        if (threads is int t) Parallelism.Threads = t;
    }

    /// <summary>Runs a command body, turning expected failures into one clear line on stderr and exit code 1.</summary>
    public static int Run(Func<int> body, string? onCancel = null)
    {
        try
        {
            try { return body(); }
            catch (AggregateException e) when (e.Flatten().InnerExceptions is [var single]) { throw single; }   // a parallel loop's one failure, as itself
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine(onCancel ?? "cancelled");
            return 130;
        }
        catch (MLNet.MemoryTokens.Training.TrainingDivergedException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or UnauthorizedAccessException or NotSupportedException
                                  or MLNet.MemoryTokens.IO.CheckpointException or MLNet.MemoryTokens.Imaging.ImageDecodeException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
