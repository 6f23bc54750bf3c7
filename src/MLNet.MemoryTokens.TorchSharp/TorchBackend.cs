using System.Runtime.InteropServices;
using MLNet.MemoryTokens.TorchSharp.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp;

/// <summary>How matrix products run: float32 throughout, or bf16 autocast (CUDA).</summary>
/// <remarks>TorchSharp 0.107 has no <c>torch.autocast</c>, so the backend casts as autocast's CUDA policy does: linear layers
/// and attention in bfloat16; LayerNorm, the residual stream, normalisation, the loss and the optimizer (float32 master
/// weights) in float32.</remarks>
public enum ComputePrecision { Float32, BFloat16 }

/// <summary>Where and how the TorchSharp backend computes: device (cpu | cuda | auto), precision, CPU threads.</summary>
public sealed record TorchBackendOptions
{
    /// <summary>"cpu", "cuda", "cuda:N" or "auto" (CUDA when TorchSharp-cuda is referenced and a GPU is present, else CPU).</summary>
    public string Device { get; init; } = "auto";
    public ComputePrecision Precision { get; init; } = ComputePrecision.Float32;
    /// <summary>LibTorch's intra-op threads on the CPU (null: LibTorch's default, one per core).</summary>
    public int? Threads { get; init; }
    /// <summary>Where VQT keeps its key/value cache (in <see cref="MLNet.MemoryTokens.Tuning.TuningOptions.CacheDType"/>): device
    /// memory, or pinned host memory copied batch by batch (caches larger than the GPU's memory).</summary>
    public Tuning.QueryTuning.KeyValueCacheLocation KeyValueCache { get; init; } = Tuning.QueryTuning.KeyValueCacheLocation.Device;

    public void Validate() => TorchBackend.ParseDevice(Device);
}

/// <summary>Loading LibTorch and choosing a device, with errors that name the real cause.</summary>
public static class TorchBackend
{
    static readonly object Gate = new();
    static bool _loaded;

    /// <summary>Initialises TorchSharp's native library once. When it cannot load, the exception says why (the dynamic
    /// loader's own message, which TorchSharp hides behind "doesn't contain a reference to libtorch-cpu-linux-x64") and what to do.</summary>
    public static void EnsureLoaded()
    {
        if (_loaded) return;
        lock (Gate)
        {
            if (_loaded) return;
            try { _ = torch.cuda.is_available(); }
            catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException)
            {
                throw new InvalidOperationException(NativeLoadFailure(e), e);
            }
            _loaded = true;
        }
    }

    /// <summary>A message for a TorchSharp native load failure: the loader's error for libLibTorchSharp.so, and the fix.</summary>
    static string NativeLoadFailure(Exception e)
    {
        string? path = null, loaderError = null;
        foreach (var candidate in new[] { Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", "libLibTorchSharp.so"),
                     Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"), Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so") })
        {
            if (!File.Exists(candidate)) continue;
            path = candidate;
            try { NativeLibrary.Free(NativeLibrary.Load(candidate)); }
            catch (DllNotFoundException d) { loaderError = d.Message; }
            break;
        }
        if (path is null)
            return "TorchSharp's native library is not in the application folder: reference TorchSharp-cpu (CPU) or TorchSharp-cuda-linux " +
                   $"(NVIDIA GPU) 0.107.0 in the application project. ({e.GetBaseException().Message})";
        if (loaderError is not null && loaderError.Contains("GLIBCXX_3.4.32", StringComparison.Ordinal))
            return $"{path} needs GLIBCXX_3.4.32, and this system's libstdc++ ({ElfVersionNeeds.LoadedLibStdCxx() ?? "libstdc++.so.6"}) is older. " +
                   "Add <MemoryTokensPatchLibTorchSharp>auto</MemoryTokensPatchLibTorchSharp> to the application project and rebuild " +
                   "(it marks that requirement weak in the output copy; see docs/torchsharp.md), or install a libstdc++ from GCC 13 or later.";
        return $"TorchSharp could not load {path}: {loaderError ?? e.GetBaseException().Message}";
    }

    /// <summary>The device a name stands for ("auto": CUDA when available). Throws ArgumentException on a bad name and
    /// InvalidOperationException when CUDA is asked for but absent.</summary>
    public static Device ResolveDevice(string name)
    {
        var kind = ParseDevice(name);
        EnsureLoaded();
        if (kind == "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (kind == "cpu") return torch.CPU;
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"Device '{name}' asked for, but CUDA is not available: reference TorchSharp-cuda-linux (not TorchSharp-cpu) and check the NVIDIA driver, or use --device cpu.");
        return torch.device(name);
    }

    /// <summary>"cpu" | "cuda" | "auto" of a device name; throws ArgumentException naming the value otherwise.</summary>
    public static string ParseDevice(string name)
    {
        var n = (name ?? "").Trim().ToLowerInvariant();
        if (n is "cpu" or "auto") return n;
        if (n == "cuda" || (n.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(n[5..], out var i) && i >= 0)) return "cuda";
        throw new ArgumentException($"Unknown device '{name}': use cpu, cuda, cuda:N or auto.", nameof(name));
    }

    /// <summary>Applies the options' thread count and returns their device.</summary>
    public static Device Prepare(TorchBackendOptions options)
    {
        options.Validate();
        var device = ResolveDevice(options.Device);
        if (options.Threads is int t)
        {
            if (t < 1) throw new ArgumentOutOfRangeException(nameof(options), t, "Threads must be at least 1.");
            torch.set_num_threads(t);
        }
        return device;
    }
}
