using System.Diagnostics;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Faults: a process killed mid-run resumes to the same adapter; a full disk, a file-size limit, a kill or a
/// cancellation during a save leave the previous adapter as it was. (A read-only output: <see cref="DataSafetyTests"/>.)</summary>
public class FaultTests
{
    /// <summary>Throws ENOSPC (or cancels) once <paramref name="budget"/> bytes have gone through, as a full disk does mid-write.</summary>
    sealed class FailingStream(Stream inner, long budget, bool cancel) : Stream
    {
        long _written;
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_written + buffer.Length > budget)
            {
                inner.Write(buffer[..(int)Math.Max(0, budget - _written)]);
                if (cancel) throw new OperationCanceledException("cancelled mid-save");
                throw new IOException("No space left on device", OperatingSystem.IsWindows() ? unchecked((int)0x80070070) : 28);
            }
            inner.Write(buffer);
            _written += buffer.Length;
        }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _written;
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    static T WithFault<T>(string file, long budget, bool cancel, Func<T> body)
    {
        AtomicFile.FaultInjection.Value = (path, s) => Path.GetFileName(path) == file ? new FailingStream(s, budget, cancel) : s;
        try { return body(); }
        finally { AtomicFile.FaultInjection.Value = null; }
    }

    [Theory]
    [InlineData(Adapter.WeightsFile, 0L, false)]      // the disk is full from the first byte of the weights
    [InlineData(Adapter.WeightsFile, 300L, false)]    // mid-weights
    [InlineData(Adapter.ConfigFile, 100L, false)]     // the weights written, then the config cut short
    [InlineData(Adapter.WeightsFile, 0L, true)]       // cancelled at once
    [InlineData(Adapter.WeightsFile, 300L, true)]     // cancelled mid-weights
    [InlineData(Adapter.ConfigFile, 100L, true)]      // cancelled while the config is written
    public void AFullDiskOrACancellationMidSaveKeepsThePreviousAdapter(string file, long budget, bool cancel)
    {
        using var s = new Scratch();
        var dir = s["adapter"];
        DataSafetyTests.TinyAdapter(seed: 1).Save(dir);
        var before = Snapshot(dir);
        var next = DataSafetyTests.TinyAdapter(seed: 2);
        Assert.True(next.Tensors.Values.Sum(t => t.Length) * 4 > 300, "the weights must be larger than the budget");
        if (cancel) Assert.ThrowsAny<OperationCanceledException>(() => WithFault(file, budget, true, () => next.Save(dir)));
        else Assert.Contains("disk is full", Assert.Throws<IOException>(() => WithFault(file, budget, false, () => next.Save(dir))).Message);
        AssertSameTree(before, dir);
        Assert.Equal(["adapter"], Directory.GetFileSystemEntries(s.Root).Select(Path.GetFileName));   // no staging left behind
        next.Save(dir);                                                                               // and the next save works
        Assert.NotEqual(before[Adapter.WeightsFile], File.ReadAllBytes(Path.Combine(dir, Adapter.WeightsFile)));
    }

    [Fact]
    public void AFullDiskWhileCheckpointingKeepsThePreviousEpochResumable()
    {
        using var s = new Scratch();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        TrainingOptions Options() => new() { Epochs = 3, BatchSize = 8, LearningRate = 3e-3f, Seed = 4, ValidationFraction = 0, CheckpointDirectory = s["ckpt"] };
        var whole = Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Options() with { CheckpointDirectory = null });
        // epoch 1 checkpoints; the disk fills while epoch 2's is written
        int epochs = 0;
        AtomicFile.FaultInjection.Value = (path, stream) => path.Contains(".e2.") ? new FailingStream(stream, 100, false) : stream;
        try
        {
            Assert.Throws<IOException>(() => Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Options() with
            {
                Progress = new Sync(p => { if (p.Phase == "epoch") epochs++; }),
            }));
        }
        finally { AtomicFile.FaultInjection.Value = null; }
        Assert.Equal(1, epochs);
        var resumed = Trainer.Train(TinyBackbone(), new ColourSquares(24, 1), null, tuning, Options() with { Resume = true });
        foreach (var (a, b) in whole.Model.Parameters.Zip(resumed.Model.Parameters))
            Assert.True(a.Value.Data.AsSpan().SequenceEqual(b.Value.Data), $"{a.Name} differs after the resume");
    }

    [Fact]
    public void KillNineMidRunThenResumeGivesAByteIdenticalAdapter()
    {
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"]);
        var data = WriteColourFolder(s["data"], count: 48);
        string[] Train(string outDir, params string[] extra) => ["train", "--model", ckpt, "--data", data, "--method", "memory", "--tokens", "2",
            "--epochs", "40", "--batch", "8", "--lr", "3e-3", "--validation-fraction", "0", "--seed", "3", "--out", outDir, .. extra];
        var whole = RunCli(Train(s["whole"]));
        Assert.True(whole.ExitCode == 0, whole.ToString());
        // the same run, killed (SIGKILL: no chance to clean up) as soon as its second epoch is reported
        var killed = RunCli(Train(s["resumed"], "--checkpoint-dir", s["ckpt"]), whileRunning: p =>
        {
            string? line;
            while ((line = p.StandardOutput.ReadLine()) is not null)
                if (line.StartsWith("epoch 2/")) { p.Kill(); break; }
        });
        Assert.False(File.Exists(Path.Combine(s["resumed"], Adapter.WeightsFile)), "the run finished before it was killed");
        var resumed = RunCli(Train(s["resumed"], "--checkpoint-dir", s["ckpt"], "--resume"));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("resumed after epoch", resumed.Stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(s["whole"], Adapter.WeightsFile)), File.ReadAllBytes(Path.Combine(s["resumed"], Adapter.WeightsFile)));
    }

    /// <summary><c>mmt train</c> under a file-size limit (ulimit -f): with SIGXFSZ ignored the save's write fails (EFBIG), a real
    /// write error from the OS; with its default action the kernel kills the process in the middle of the save.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AFileSizeLimitOrAKillDuringTheSaveKeepsThePreviousAdapter(bool ignoreSignal)
    {
        if (OperatingSystem.IsWindows()) return;
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"]);
        var data = WriteColourFolder(s["data"], count: 12);
        var adapter = s["adapter"];
        string[] args = ["train", "--model", ckpt, "--data", data, "--method", "full", "--epochs", "1", "--batch", "4", "--validation-fraction", "0", "--out", adapter];
        Assert.Equal(0, RunCli(args).ExitCode);
        var before = Snapshot(adapter);
        Assert.True(before[Adapter.WeightsFile].Length > 64 * 1024, "the full fine-tuning adapter must be larger than the limit below");
        var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"{(ignoreSignal ? "trap '' XFSZ; " : "")}ulimit -f 64; exec dotnet \"$0\" \"$@\"");   // 64 KiB per file
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mmt.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--seed");
        psi.ArgumentList.Add("5");
        psi.Environment["DOTNET_EnableWriteXorExecute"] = "0";   // its double-mapped code pages are files too
        using var p = Process.Start(psi)!;
        var errTask = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        string err = await errTask;
        if (ignoreSignal)
        {
            Assert.True(p.ExitCode == 1, err);
            Assert.Contains($"Could not save the adapter to '{adapter}'", err);
            Assert.Contains("the previous one there is unchanged", err);
        }
        else Assert.True(p.ExitCode == 128 + 25, $"exit {p.ExitCode}: {err}");   // killed by SIGXFSZ mid-write
        AssertSameTree(before, adapter);
        var left = Directory.GetFileSystemEntries(s.Root).Select(Path.GetFileName).Where(n => n!.StartsWith(".adapter.mmt-")).ToArray();
        if (ignoreSignal) Assert.Empty(left);   // a killed process cannot clean up: its hidden staging folder stays, the adapter is whole
    }

    sealed class Sync(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
