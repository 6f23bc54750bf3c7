using System.CommandLine;
using MLNet.MemoryTokens.TorchSharp;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary><c>--backend managed|torchsharp</c>, <c>--device cpu|cuda|cuda:N|auto</c>, <c>--precision fp32|bf16|int16</c> and
/// <c>--libtorch DIR</c>, shared by train, evaluate, predict and featurize: which compute backend runs the work, mapped to the
/// engine's <see cref="ComputeOptions"/> (the method table picks the backend's compute from it).</summary>
/// <remarks>The tool carries the TorchSharp backend's managed code and TorchSharp's small native glue, not LibTorch (hundreds of
/// MB for the CPU, gigabytes for CUDA). With <c>--backend torchsharp</c> it finds LibTorch in <c>--libtorch</c> /
/// <c>MMT_LIBTORCH</c>, beside itself, or in the NuGet packages folder (<see cref="TorchBackend"/>), and says what to install
/// when none is there.</remarks>
internal sealed record BackendOptions(Option<string> Backend, Option<string> Device, Option<string> Precision, Option<string?> LibTorch, bool Benchmark = false)
{
    /// <param name="benchmark">A benchmark's options: <c>--precision int16|int8</c> name our integer backbone (int8 only here:
    /// it is below the agreement gate), and the TorchSharp backend then runs fp32.</param>
    public static BackendOptions AddTo(Command cmd, string? backendDescription = null, bool benchmark = false)
    {
        var backend = new Option<string>("--backend")
        {
            Description = backendDescription ?? "Compute backend: managed (this library's kernels, CPU; default) or torchsharp (LibTorch through TorchSharp: CPU or NVIDIA GPU).",
            DefaultValueFactory = _ => TuningMethods.ManagedBackend,
        };
        backend.AcceptOnlyFromAmong(TuningMethods.ManagedBackend, TorchSharpBackend.Name);
        var device = new Option<string>("--device")
        {
            Description = "cpu | cuda | cuda:N | auto (torchsharp: CUDA when present, else the CPU; the managed backend runs on the CPU).",
            DefaultValueFactory = _ => "auto",
        };
        var precision = new Option<string>("--precision")
        {
            Description = benchmark
                ? "fp32 | bf16 | int16 | int8: int16 / int8 measure our integer backbone (beside our fp32 and ONNX Runtime's int8 model); bf16: the TorchSharp backend's autocast."
                : "fp32 | bf16 | int16 (bf16 autocast: torchsharp on CUDA; int16: the managed engine's backbone at inference on AVX-512BW CPUs, top-1 agreement with fp32 in docs/benchmarks.md).",
            DefaultValueFactory = _ => "fp32",
        };
        if (benchmark) precision.AcceptOnlyFromAmong("fp32", "bf16", "int16", "int8");
        else precision.AcceptOnlyFromAmong("fp32", "bf16", "int16");
        var libTorch = new Option<string?>("--libtorch")
        {
            Description = $"torchsharp: folder with LibTorch {TorchBackend.LibTorchVersion}'s libraries (default: ${TorchBackend.EnvironmentVariable}, beside mmt, or the NuGet packages folder's libtorch-cpu).",
        };
        cmd.Options.Add(backend); cmd.Options.Add(device); cmd.Options.Add(precision); cmd.Options.Add(libTorch);
        return new BackendOptions(backend, device, precision, libTorch, benchmark);
    }

    /// <summary>The compute the options ask for; for torchsharp the backend is registered in the method table, LibTorch's
    /// folder chosen and <paramref name="threads"/> applied to LibTorch too.</summary>
    public ComputeOptions Resolve(ParseResult r, int? threads)
    {
        var compute = new ComputeOptions
        {
            Backend = r.GetValue(Backend)!, Device = r.GetValue(Device)!,
            // a benchmark's int16 / int8 are ours (it reads them itself), and the backend it compares with runs fp32; elsewhere
            // int16 goes to ComputeOptions, whose validation refuses it for another backend
            Precision = r.GetValue(Precision) switch
            {
                "bf16" => ComputePrecision.BFloat16,
                "int16" when !Benchmark || r.GetValue(Backend) == TuningMethods.ManagedBackend => ComputePrecision.Int16,
                _ => ComputePrecision.Float32,
            },
        };
        if (compute.IsManaged && r.GetValue(LibTorch) is not null) throw new ArgumentException("--libtorch applies to --backend torchsharp.");
        compute.Validate();
        if (compute.IsManaged) return compute;
        if (r.GetValue(LibTorch) is string folder) TorchBackend.UseLibTorch(folder);
        TorchSharpBackend.Register();
        if (threads is int t) TorchBackend.SetThreads(t);
        return compute;
    }
}
