using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>What the safety tests share: tiny random ViTs and their checkpoint files, a learnable colour data set written as
/// PPM files, and the <c>mmt</c> tool run in a child process (a crash or a hang there fails the test, not the test host).</summary>
internal static class SafetyFixtures
{
    public static VitConfig TinyConfig(int imageSize = 16, int patch = 4, int classes = 0, int dim = 32, int depth = 2, int heads = 2) =>
        new() { ImageSize = imageSize, PatchSize = patch, Dim = dim, Depth = depth, Heads = heads, MlpDim = 2 * dim, NumClasses = classes };

    public static Backbone TinyBackbone(int seed = 3, VitConfig? config = null)
    {
        var vit = VisionTransformer.CreateRandom(config ?? TinyConfig(), seed);
        return new Backbone(vit, new PreprocessConfig { InputSize = vit.Config.ImageSize }, "tiny", Backbone.ComputeFingerprint(vit.Parameters));
    }

    /// <summary>A safetensors checkpoint of a random tiny ViT (timm names) at <paramref name="path"/>.</summary>
    public static string WriteCheckpoint(string path, VitConfig? config = null, int seed = 3)
    {
        SafeTensorsFile.Write(path, VisionTransformer.CreateRandom(config ?? TinyConfig(), seed).Parameters);
        return path;
    }

    public static byte[] Ppm(RgbImage image) => [.. System.Text.Encoding.ASCII.GetBytes($"P6\n{image.Width} {image.Height}\n255\n"), .. image.Pixels];

    /// <summary>A folder per class of PPM files.</summary>
    public static string WriteColourFolder(string root, int count = 24, int seed = 4, int classes = 3)
    {
        var ds = new ColourSquares(count, seed, classes);
        for (int i = 0; i < ds.Count; i++)
        {
            var dir = Directory.CreateDirectory(Path.Combine(root, ds.ClassNames[ds.LabelOf(i)])).FullName;
            File.WriteAllBytes(Path.Combine(dir, $"{i:D3}.ppm"), Ppm(ds.Load(i)));
        }
        return root;
    }

    public sealed record CliRun(int ExitCode, string Stdout, string Stderr, bool TimedOut, TimeSpan Elapsed)
    {
        public override string ToString() => $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")} after {Elapsed.TotalSeconds:F1} s\nstdout: {Stdout}\nstderr: {Stderr}";
    }

    /// <summary>Runs <c>dotnet mmt.dll args</c>; a run past <paramref name="timeout"/> is killed and reported as timed out.
    /// The GC heap is capped (1 GiB by default), so a runaway allocation fails fast instead of taking the machine.</summary>
    public static CliRun RunCli(string[] args, TimeSpan? timeout = null, string heapLimitHex = "40000000", Action<Process>? whileRunning = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) psi.WorkingDirectory = workingDirectory;
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mmt.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = heapLimitHex;
        psi.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        psi.Environment["DOTNET_EnableCrashReport"] = "0";
        var watch = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        whileRunning?.Invoke(p);   // may read stdout lines itself; the rest is read below
        var stdout = p.StandardOutput.ReadToEndAsync();
        bool done = p.WaitForExit((int)(timeout ?? TimeSpan.FromSeconds(120)).TotalMilliseconds);
        if (!done) { try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } p.WaitForExit(); }
        return new CliRun(done ? p.ExitCode : -1, stdout.Result, stderr.Result, !done, watch.Elapsed);
    }

    /// <summary>Every file under <paramref name="root"/> with its bytes: what "left untouched" is checked against.</summary>
    public static Dictionary<string, byte[]> Snapshot(string root) =>
        Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .ToDictionary(p => Path.GetRelativePath(root, p), p => File.Exists(p) ? File.ReadAllBytes(p) : []);

    public static void AssertSameTree(Dictionary<string, byte[]> before, string root)
    {
        var after = Snapshot(root);
        Xunit.Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (k, v) in before) Xunit.Assert.True(v.AsSpan().SequenceEqual(after[k]), $"{k} changed");
    }

    /// <summary>A checkpoint and a small colour data set; train arguments that finish in a second.</summary>
    public sealed class Job : IDisposable
    {
        public readonly Scratch S = new();
        public readonly string Checkpoint, Data;
        public Job()
        {
            Checkpoint = WriteCheckpoint(S["vit.safetensors"]);
            Data = WriteColourFolder(S["data"], count: 12);
        }
        public string[] Train(string outDir, params string[] extra) =>
            ["train", "--model", Checkpoint, "--data", Data, "--method", "head-class", "--epochs", "1", "--batch", "4", "--validation-fraction", "0", "--out", outDir, .. extra];
        public void Dispose() => S.Dispose();
    }

    /// <summary>A folder of someone's documents, which no output may touch.</summary>
    public static string Documents(string folder)
    {
        Directory.CreateDirectory(Path.Combine(folder, "taxes"));
        File.WriteAllText(Path.Combine(folder, "thesis.txt"), "four years of work");
        File.WriteAllBytes(Path.Combine(folder, "taxes", "2025.pdf"), [1, 2, 3]);
        return folder;
    }

    /// <summary>A named pipe (mkfifo): what a reader must refuse instead of blocking on.</summary>
    public static string Fifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]))!;
        p.WaitForExit();
        Xunit.Assert.Equal(0, p.ExitCode);
        return path;
    }

    /// <summary>A small PPM photo at <paramref name="name"/> in the scratch folder (its folders made).</summary>
    public static string Image(Scratch s, string name, int index = 0)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(s[name])!);
        File.WriteAllBytes(s[name], Ppm(new ColourSquares(index + 1, 1).Load(index)));
        return s[name];
    }
}

/// <summary>A fresh folder under the temp folder, removed (with anything made read-only in it made writable again) on dispose.</summary>
internal sealed class Scratch : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("mmt-safety-").FullName;
    public string this[string relative] => Path.Combine(Root, relative);

    public void Dispose()
    {
        try
        {
            ReadOnlyFolder.ClearAll(Root);
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
