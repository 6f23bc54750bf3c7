using System.Globalization;

namespace FashionMnistMlNet;

/// <summary>Command line of the sample (all optional): where the data and the checkpoint are, and the training settings
/// both paths share.</summary>
sealed record SampleArguments
{
    public string? Data { get; init; }
    public bool Full { get; init; }
    public string? Model { get; init; }
    public int ImageSize { get; init; } = 112;
    public int Epochs { get; init; } = 2;
    public int MemoryTokens { get; init; } = 5;
    public int BatchSize { get; init; } = 32;
    public float LearningRate { get; init; } = 1e-3f;
    public int Seed { get; init; } = 0;
    public int? TrainLimit { get; init; }
    public int? TestLimit { get; init; }
    public int AutoMLSeconds { get; init; } = 600;

    public const string Usage = """
        FashionMnistMlNet: memory tokens through ML.NET and through the engine API, same seed and options, same accuracy.

          --data <folder>       IDX folder (default: samples/data/fashion-mnist-2k, 2,000 train / 1,000 test)
          --full                the full Debian set in /usr/share/datasets/fashion-mnist (60,000 / 10,000)
          --model <path|id>     checkpoint path or timm id (default: ../shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors
                                next to the repo, else that timm id, downloaded)
          --image-size <n>      input size (default 112)
          --epochs <n>          (default 2)   --memory-tokens <n> (default 5)   --batch <n> (default 32)
          --lr <x>              (default 1e-3)  --seed <n> (default 0)
          --train <n> --test <n>  use only the first n images of a split
          --automl-seconds <n>  samples/AutoMLSweep only: the sweep's time budget (default 600)
        """;

    public static SampleArguments Parse(string[] args)
    {
        var a = new SampleArguments();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
            a = args[i] switch
            {
                "--data" => a with { Data = Next() },
                "--full" => a with { Full = true },
                "--model" => a with { Model = Next() },
                "--image-size" => a with { ImageSize = Int() },
                "--epochs" => a with { Epochs = Int() },
                "--memory-tokens" => a with { MemoryTokens = Int() },
                "--batch" => a with { BatchSize = Int() },
                "--lr" => a with { LearningRate = float.Parse(Next(), CultureInfo.InvariantCulture) },
                "--seed" => a with { Seed = Int() },
                "--train" => a with { TrainLimit = Int() },
                "--test" => a with { TestLimit = Int() },
                "--automl-seconds" => a with { AutoMLSeconds = Int() },
                "-h" or "--help" => throw new HelpRequested(),
                var other => throw new ArgumentException($"Unknown argument '{other}'."),
            };
        }
        return a;
    }

    public sealed class HelpRequested : Exception;
}
