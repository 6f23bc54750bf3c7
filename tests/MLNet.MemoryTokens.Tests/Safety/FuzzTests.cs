using MLNet.MemoryTokens.Fuzz;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>The fuzzer's CI run: a fixed, seeded set of mutated inputs for each of the eight formats (20,000 in all, well under
/// a minute on 2 cores). Every input must be accepted or refused with the format's own error: no other exception (a crash)
/// and none running past 10 s (a hang). The long run is <c>dotnet run --project tests/MLNet.MemoryTokens.Fuzz -c Release -- --minutes 10</c>.</summary>
public class FuzzTests(ITestOutputHelper output)
{
    public const int InputsPerTarget = 2500;

    [Fact]
    public void TheFuzzerFindsNoCrashAndNoHangInEveryFormat()
    {
        using var s = new Scratch();
        var targets = FuzzTargets.All(TestPaths.Fixtures, s["work"]);
        Assert.Equal(["jpeg", "png", "bmp", "ppm", "idx", "safetensors", "npz", "adapter-json"], targets.Select(t => t.Name));
        Assert.All(targets, t => Assert.NotEmpty(t.Seeds));
        var report = Fuzzer.Run(targets, new FuzzOptions { Seed = 20261207, InputsPerTarget = InputsPerTarget, FindingsFolder = s["findings"] });
        output.WriteLine(report.Table());
        Assert.Equal(8L * InputsPerTarget, report.Inputs);
        Assert.True(report.Crashes == 0 && report.Hangs == 0, report.Table());
        // the mutations reach past the first checks: every format accepts some mutated inputs and refuses others
        Assert.All(report.Targets, t => Assert.True(t.Accepted > t.Inputs / 100 && t.Rejected > t.Inputs / 10, $"{t.Name}: {t.Accepted} accepted, {t.Rejected} rejected"));
    }

    [Fact]
    public async Task TheSameSeedGivesTheSameInputsInAnyProcess()
    {
        using var s = new Scratch();
        var targets = FuzzTargets.All(TestPaths.Fixtures, s["work"]).Where(t => t.Name is "jpeg" or "adapter-json").ToList();
        var here = Fuzzer.Run(targets, new FuzzOptions { Seed = 5, InputsPerTarget = 300 });
        Assert.Equal(here.Targets.Select(t => (t.Accepted, t.Rejected)), Fuzzer.Run(targets, new FuzzOptions { Seed = 5, InputsPerTarget = 300 }).Targets.Select(t => (t.Accepted, t.Rejected)));
        // and in another process (nothing per-process, such as HashCode's random seed, may enter the mutations): the command
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "MLNet.MemoryTokens.Fuzz.dll"), "--inputs", "300", "--seed", "5",
                     "--target", "jpeg,adapter-json", "--fixtures", TestPaths.Fixtures, "--findings", s["findings"] }) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var lines = (await p.StandardOutput.ReadToEndAsync()).Split('\n');
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, string.Join('\n', lines) + await err);
        foreach (var t in here.Targets)
            Assert.Contains(lines, l => l.StartsWith(t.Name + " ") && l.Contains($"{t.Accepted:N0}") && l.Contains($"{t.Rejected:N0}"));
    }
}
