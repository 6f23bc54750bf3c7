namespace MLNet.MemoryTokens.Tuning;

/// <summary>How matrix products run: float32 throughout; bfloat16 autocast (linear layers and attention in bf16; norms,
/// residual stream, head, loss and optimizer in float32) — a GPU backend's option; or int16 — the managed engine's inference
/// option for the frozen backbone's Linear layers (<see cref="Model.InferencePrecision.Int16"/>; never for training).</summary>
public enum ComputePrecision { Float32, BFloat16, Int16 }

/// <summary>Which compute backend runs a method, and where: the managed engine on the CPU by default; another backend (e.g.
/// <c>torchsharp</c>, registered by its package) on a device it names. <see cref="TuningMethods.Compute(TuningMethod, ComputeOptions)"/>
/// turns it into a method's compute; training (<c>TrainingOptions.Compute</c>) and serving (<see cref="Adapter.CreateModel"/>)
/// take it.</summary>
public sealed record ComputeOptions
{
    /// <summary>The managed engine on the CPU, float32: what runs when nothing is said.</summary>
    public static ComputeOptions Managed { get; } = new();

    /// <summary>The backend's name: <see cref="TuningMethods.ManagedBackend"/> (default) or one a backend package registered.</summary>
    public string Backend { get; init; } = TuningMethods.ManagedBackend;

    /// <summary>"cpu", "cuda", "cuda:N" or "auto" (the backend's best: CUDA when it has a GPU, else the CPU). Default "auto".</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Float32 (default) or bf16 autocast (a GPU backend's option).</summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float32;

    public bool IsManaged => Backend == TuningMethods.ManagedBackend;

    /// <summary>The device kind a name stands for: "cpu", "cuda" (also "cuda:N") or "auto"; ArgumentException naming the value otherwise.</summary>
    public static string DeviceKind(string device)
    {
        var n = (device ?? "").Trim().ToLowerInvariant();
        if (n is "cpu" or "auto") return n;
        if (n == "cuda" || (n.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(n[5..], out var i) && i >= 0)) return "cuda";
        throw new ArgumentException($"Unknown device '{device}': use cpu, cuda, cuda:N or auto.", nameof(device));
    }

    /// <summary>Checks the names; the managed engine refuses what it cannot do (a GPU, bf16) with the backend that can.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Backend)) throw new ArgumentException("Name a compute backend (managed, or one a backend package registered).", nameof(Backend));
        var kind = DeviceKind(Device);
        if (!Enum.IsDefined(Precision)) throw new ArgumentOutOfRangeException(nameof(Precision), Precision, "Unknown precision.");
        if (IsInteger)
        {
            if (!IsManaged) throw new NotSupportedException($"{Precision} is a managed-engine inference precision; backend '{Backend}' runs fp32 or bf16.");
            if (!Kernels.QuantizedGemm.IsSupported) throw new PlatformNotSupportedException($"{Precision} inference needs AVX-512BW, which this CPU (or runtime) does not offer; use fp32.");
        }
        if (!IsManaged) return;
        if (kind == "cuda")
            throw new NotSupportedException($"The managed engine computes on the CPU; device '{Device}' needs the TorchSharp backend (backend \"torchsharp\", package MLNet.MemoryTokens.TorchSharp with TorchSharp-cuda-linux).");
        if (Precision == ComputePrecision.BFloat16)
            throw new NotSupportedException("The managed engine computes in float32 (or int16 at inference); bf16 autocast is an option of the TorchSharp backend on CUDA.");
    }

    /// <summary>int16: an inference precision of the managed engine's backbone.</summary>
    public bool IsInteger => Precision == ComputePrecision.Int16;

    /// <summary>The backbone precision this asks the managed engine for at inference.</summary>
    public Model.InferencePrecision InferencePrecision => IsInteger ? Model.InferencePrecision.Int16 : Model.InferencePrecision.Fp32;

    public override string ToString() => IsManaged ? Backend + (IsInteger ? $" ({Precision.ToString().ToLowerInvariant()})" : "") : $"{Backend} ({Device}{(Precision == ComputePrecision.BFloat16 ? ", bf16" : "")})";
}
