using System.Diagnostics;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>A real read-only folder for fault tests: write permission removed (chmod a-w) for an ordinary user; for root,
/// whom permissions do not stop, the file system's immutable attribute (chattr +i), which stops root too.</summary>
internal static class ReadOnlyFolder
{
    static readonly bool IsRoot = Environment.UserName == "root";

    /// <summary>Makes <paramref name="folder"/> read-only; true when a probe write into it then fails.</summary>
    public static bool TryMake(string folder)
    {
        if (OperatingSystem.IsWindows()) return false;
        if (IsRoot) { if (!Chattr("+i", folder)) return false; }
        else File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        try
        {
            File.WriteAllText(Path.Combine(folder, ".probe"), "");
            File.Delete(Path.Combine(folder, ".probe"));
            Undo(folder);
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; }
    }

    public static void Undo(string folder)
    {
        if (OperatingSystem.IsWindows() || !Directory.Exists(folder)) return;
        if (IsRoot) Chattr("-i", folder);
        else File.SetUnixFileMode(folder, File.GetUnixFileMode(folder) | UnixFileMode.UserWrite);
    }

    /// <summary>Undoes every read-only folder below <paramref name="root"/> (so that the scratch folder can be removed).</summary>
    public static void ClearAll(string root)
    {
        if (!Directory.Exists(root)) return;
        Undo(root);
        foreach (var d in Directory.EnumerateDirectories(root, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 }))
            Undo(d);
    }

    static bool Chattr(string flag, string path)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }   // no chattr
    }

    /// <summary>Whether this machine can make one (probed once, on a temp folder).</summary>
    public static readonly bool Supported = Probe();

    static bool Probe()
    {
        var dir = Directory.CreateTempSubdirectory("mmt-ro-probe-").FullName;
        try { return TryMake(dir); }
        finally { Undo(dir); Directory.Delete(dir, true); }
    }
}

/// <summary>A fact that needs a real read-only folder; skipped, saying why, where none can be made.</summary>
public sealed class ReadOnlyFolderFactAttribute : FactAttribute
{
    public ReadOnlyFolderFactAttribute()
    {
        if (!ReadOnlyFolder.Supported)
            Skip = "no read-only folder can be made here (Windows, or root without chattr or an ext4/xfs-like file system).";
    }
}
