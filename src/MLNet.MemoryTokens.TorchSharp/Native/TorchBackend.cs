using System.Runtime.InteropServices;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Native;

/// <summary>Loading LibTorch and choosing a device, with errors that name the real cause and the fix.</summary>
/// <remarks>
/// Where LibTorch comes from, in order:
/// <list type="number">
/// <item>a folder given to <see cref="UseLibTorch"/> (the CLI's <c>--libtorch</c>) or in the <c>MMT_LIBTORCH</c> environment
/// variable: LibTorch 2.10's shared libraries (<c>libc10.so</c>, <c>libtorch_cpu.so</c>, <c>libtorch.so</c>, and for CUDA
/// <c>libc10_cuda.so</c>, <c>libtorch_cuda.so</c>), e.g. <c>libtorch/lib</c> of pytorch.org's LibTorch 2.10 zip, or the
/// <c>runtimes/linux-x64/native</c> folder of an application built with TorchSharp-cpu or TorchSharp-cuda-linux 0.107;
/// a <c>libLibTorchSharp.so</c> there is used instead of the application's;</item>
/// <item>beside the application (it references TorchSharp-cpu or TorchSharp-cuda-linux: the usual case for a library user);</item>
/// <item>the NuGet global packages folder, where any project that references TorchSharp-cpu 0.107 restored
/// <c>libtorch-cpu-&lt;rid&gt;</c> 2.10.0 (CPU only: the CUDA packages are split into parts that only a build joins).</item>
/// </list>
/// The <c>mmt</c> tool carries the managed bindings and TorchSharp's small native glue, not LibTorch (hundreds of MB for the
/// CPU, gigabytes for CUDA): steps 1 and 3 are how it finds one.
/// </remarks>
public static class TorchBackend
{
    /// <summary>The LibTorch version TorchSharp 0.107 binds to, and the NuGet package id stem of its CPU build.</summary>
    public const string LibTorchVersion = "2.10.0";
    public const string EnvironmentVariable = "MMT_LIBTORCH";

    static readonly object Gate = new();
    static bool _loaded;
    static string? _libTorchFolder;
    static string? _loadedFrom;

    /// <summary>Where LibTorch was loaded from (a folder), or "the application folder"; null before loading.</summary>
    public static string? LoadedFrom => _loadedFrom;

    /// <summary>Uses LibTorch from <paramref name="folder"/> (before anything loads it): see the remarks for what it holds.</summary>
    public static void UseLibTorch(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"LibTorch folder '{folder}' does not exist.");
        lock (Gate)
        {
            if (_loaded && _libTorchFolder != Path.GetFullPath(folder))
                throw new InvalidOperationException($"LibTorch is already loaded ({_loadedFrom}); choose the folder before the first use.");
            _libTorchFolder = Path.GetFullPath(folder);
        }
    }

    /// <summary>Initialises TorchSharp's native library once (from where the remarks say). When it cannot load, the exception
    /// says why (the dynamic loader's own message, which TorchSharp hides behind "doesn't contain a reference to
    /// libtorch-cpu-linux-x64") and what to do.</summary>
    public static void EnsureLoaded()
    {
        if (_loaded) return;
        lock (Gate)
        {
            if (_loaded) return;
            var folder = _libTorchFolder ?? (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env : null);
            string? preloaded = null;
            if (folder is not null)
            {
                if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{EnvironmentVariable} names '{folder}', which is not a folder.");
                Preload(folder, requireLibTorch: true);
                preloaded = folder;
            }
            else if (!HasLibTorchBesideApplication())
            {
                // TorchSharp's own fallback would print a long trace and copy LibTorch into the application folder: say what to
                // do instead, or use the NuGet packages folder's copy where it is
                preloaded = FindInNuGetCache() ?? throw new InvalidOperationException(Where);
                Preload(preloaded, requireLibTorch: true);
            }
            try { _ = torch.cuda.is_available(); }
            catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException or EntryPointNotFoundException)
            {
                throw new InvalidOperationException(NativeLoadFailure(e, preloaded), e);
            }
            _loadedFrom = preloaded ?? "the application folder";
            _loaded = true;
        }
    }

    static string[] NativeFolders() =>
    [
        Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native"),
        Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"),
        AppContext.BaseDirectory,
    ];

    static bool HasLibTorchBesideApplication() => NativeFolders().Any(f => File.Exists(Path.Combine(f, LibName("torch_cpu"))));

    static string LibName(string stem) =>
        OperatingSystem.IsWindows() ? stem + ".dll" : OperatingSystem.IsMacOS() ? "lib" + stem + ".dylib" : "lib" + stem + ".so";

    /// <summary>LibTorch's CPU libraries restored in the NuGet global packages folder (NUGET_PACKAGES, else ~/.nuget/packages), or null.</summary>
    public static string? FindInNuGetCache()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var rid = OperatingSystem.IsWindows() ? "win-x64" : OperatingSystem.IsMacOS() ? "osx-arm64" : "linux-x64";
        var folder = Path.Combine(root, $"libtorch-cpu-{rid}", LibTorchVersion, "runtimes", rid, "native");
        return File.Exists(Path.Combine(folder, LibName("torch_cpu"))) ? folder : null;
    }

    /// <summary>Loads LibTorch's libraries from <paramref name="folder"/>, dependencies first, so that TorchSharp's glue (the
    /// application's, or the folder's own libLibTorchSharp) finds them already loaded.</summary>
    static void Preload(string folder, bool requireLibTorch)
    {
        string[] order = ["c10", "torch_cpu", "torch", "c10_cuda", "torch_cuda", "LibTorchSharp"];
        if (requireLibTorch && !File.Exists(Path.Combine(folder, LibName("torch_cpu"))))
            throw new InvalidOperationException($"'{folder}' holds no {LibName("torch_cpu")}: point {EnvironmentVariable} (or --libtorch) at LibTorch {LibTorchVersion}'s library folder.");
        foreach (var stem in order)
        {
            var path = Path.Combine(folder, LibName(stem));
            if (!File.Exists(path)) continue;
            try { NativeLibrary.Load(path); }
            catch (DllNotFoundException e)
            {
                throw new InvalidOperationException($"Could not load {path}: {e.Message}" + GlibcxxAdvice(e.Message), e);
            }
        }
    }

    static string GlibcxxAdvice(string loaderError) => loaderError.Contains("GLIBCXX_3.4.32", StringComparison.Ordinal)
        ? $" — this system's libstdc++ ({ElfVersionNeeds.LoadedLibStdCxx() ?? "libstdc++.so.6"}) predates GLIBCXX_3.4.32. In your own project add " +
          "<MemoryTokensPatchLibTorchSharp>auto</MemoryTokensPatchLibTorchSharp> (it marks that one unused requirement weak in the build output's copy; " +
          "docs/torchsharp.md), or install a libstdc++ from GCC 13 or later."
        : "";

    /// <summary>A message for a TorchSharp native load failure: the loader's error for libLibTorchSharp, and the fix.</summary>
    static string NativeLoadFailure(Exception e, string? preloaded)
    {
        string? path = null, loaderError = null;
        foreach (var folder in (preloaded is null ? NativeFolders() : NativeFolders().Prepend(preloaded)))
        {
            var candidate = Path.Combine(folder, LibName("LibTorchSharp"));
            if (!File.Exists(candidate)) continue;
            path = candidate;
            try { NativeLibrary.Free(NativeLibrary.Load(candidate)); }
            catch (DllNotFoundException d) { loaderError = d.Message; }
            break;
        }
        return path is null ? $"{Where} ({e.GetBaseException().Message.Split('\n')[0]})" : Diagnose(path, loaderError, e);
    }

    const string Where = "The TorchSharp backend needs LibTorch " + LibTorchVersion + " (TorchSharp 0.107's native library). Either " +
            "reference TorchSharp-cpu (CPU) or TorchSharp-cuda-linux (NVIDIA GPU) 0.107.0 in the application project; or set " + EnvironmentVariable +
            " (mmt: --libtorch) to a folder with LibTorch's libraries — pytorch.org's LibTorch " + LibTorchVersion + " (libtorch/lib), or the " +
            "runtimes/linux-x64/native folder of any project built with TorchSharp-cpu or TorchSharp-cuda-linux 0.107.0; or restore TorchSharp-cpu 0.107.0 " +
            "in any project (`dotnet add package TorchSharp-cpu --version 0.107.0`): the CPU build is then found in the NuGet packages folder.";
    static string Diagnose(string path, string? loaderError, Exception e)
    {
        if (loaderError is not null && loaderError.Contains("GLIBCXX_3.4.32", StringComparison.Ordinal))
            return $"{path} needs GLIBCXX_3.4.32, and this system's libstdc++ ({ElfVersionNeeds.LoadedLibStdCxx() ?? "libstdc++.so.6"}) is older. " +
                   "Add <MemoryTokensPatchLibTorchSharp>auto</MemoryTokensPatchLibTorchSharp> to the application project and rebuild " +
                   "(it marks that requirement weak in the output copy; see docs/torchsharp.md), or install a libstdc++ from GCC 13 or later.";
        if (loaderError is not null && (loaderError.Contains("libtorch", StringComparison.Ordinal) || loaderError.Contains("c10", StringComparison.Ordinal)))
            return $"{Where} (loading {path}: {loaderError})";
        return $"TorchSharp could not load {path}: {loaderError ?? e.GetBaseException().Message.Split('\n')[0]}";
    }

    /// <summary>The device a name stands for ("auto": CUDA when available). Throws ArgumentException on a bad name and
    /// InvalidOperationException when CUDA is asked for but absent.</summary>
    public static Device ResolveDevice(string name)
    {
        var kind = ComputeOptions.DeviceKind(name);
        EnsureLoaded();
        if (kind == "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (kind == "cpu") return torch.CPU;
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"Device '{name}' asked for, but CUDA is not available: reference TorchSharp-cuda-linux (not TorchSharp-cpu) and check the NVIDIA driver, or use device cpu.");
        return torch.device(name.Trim().ToLowerInvariant());
    }

    /// <summary>LibTorch's intra-op threads on the CPU (default: one per core).</summary>
    public static void SetThreads(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "Threads must be at least 1.");
        EnsureLoaded();
        torch.set_num_threads(threads);
    }
}
