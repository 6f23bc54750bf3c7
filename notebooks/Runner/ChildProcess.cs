using System.Diagnostics;
using System.Text;

namespace NotebookRunner;

/// <summary>Runs a command (usually <c>dotnet …</c>) to completion: exit code, stdout and stderr interleaved, time taken.
/// Shared with tests/MLNet.MemoryTokens.Packaging.Tests.</summary>
public static class ChildProcess
{
    public sealed record Result(int ExitCode, string Output, TimeSpan Elapsed, bool TimedOut)
    {
        public override string ToString() => $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")} after {Elapsed.TotalSeconds:F1} s\n{Output}";
    }

    /// <summary>The dotnet host running this process (so children use the same SDK), else <c>dotnet</c> on PATH.</summary>
    public static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : "dotnet";

    /// <summary>Runs <paramref name="fileName"/> in <paramref name="workingDirectory"/>; <paramref name="environment"/>
    /// entries are added (a null value removes the variable). MSBuild's own variables, which a parent build or
    /// <c>dotnet test</c> leaves behind, are removed so a child build starts clean.</summary>
    public static Result Run(string fileName, IEnumerable<string> arguments, string workingDirectory,
        IReadOnlyDictionary<string, string?>? environment = null, TimeSpan? timeout = null, Action<string>? echo = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.ToList())
            if (key.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) && !key.Equals("MSBUILDDISABLENODEREUSE", StringComparison.OrdinalIgnoreCase))
                start.Environment.Remove(key);
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";   // no idle build nodes left behind holding our pipes
        if (environment is not null)
            foreach (var (key, value) in environment)
            {
                if (value is null) start.Environment.Remove(key);
                else start.Environment[key] = value;
            }

        var output = new StringBuilder();
        var stdoutClosed = new TaskCompletionSource();
        var stderrClosed = new TaskCompletionSource();
        void Line(string? line, TaskCompletionSource closed)
        {
            if (line is null) { closed.TrySetResult(); return; }
            lock (output) output.AppendLine(line);
            echo?.Invoke(line);
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        process.OutputDataReceived += (_, e) => Line(e.Data, stdoutClosed);
        process.ErrorDataReceived += (_, e) => Line(e.Data, stderrClosed);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();

        bool exited = process.WaitForExit(timeout ?? TimeSpan.FromMinutes(10));
        if (!exited)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit(5000);
        }
        // A server the child started (the compiler server) may keep our pipes open: wait for the end of the output only briefly.
        Task.WaitAll([stdoutClosed.Task, stderrClosed.Task], TimeSpan.FromSeconds(5));
        lock (output)
            return new Result(exited ? process.ExitCode : -1, output.ToString(), watch.Elapsed, !exited);
    }
}
