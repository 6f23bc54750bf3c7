using MLNet.MemoryTokens.IO;
using Xunit;

namespace MLNet.MemoryTokens.Tests.IO;

public class AtomicFileTests : IDisposable
{
    readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Successful_write_replaces_the_content_and_leaves_no_temp_file()
    {
        var path = dir.Write("model.safetensors", [1, 2, 3]);

        AtomicFile.Write(path, s => s.Write([9, 8, 7, 6]));

        Assert.Equal([9, 8, 7, 6], File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Failure_midway_keeps_the_old_file_and_removes_the_temp_file()
    {
        var path = dir.Write("model.safetensors", [1, 2, 3]);

        var ex = Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[100_000]);  // some bytes reach the temp file first
            throw new InvalidOperationException("tensor enumeration failed");
        }));

        Assert.Contains(path, ex.Message);
        Assert.Contains("tensor enumeration failed", ex.Message);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Failure_without_a_previous_file_creates_nothing()
    {
        var path = dir.File("new.safetensors");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, _ => throw new IOException("boom")));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Disk_full_is_reported_as_such_with_the_target()
    {
        var path = dir.Write("model.safetensors", [1, 2, 3]);
        var diskFull = OperatingSystem.IsWindows() ? unchecked((int)0x80070070) : 28;  // ERROR_DISK_FULL / ENOSPC

        var ex = Assert.Throws<IOException>(() => AtomicFile.Write(path, _ => throw new IOException("No space left on device", diskFull)));

        Assert.Contains(path, ex.Message);
        Assert.Contains("disk is full", ex.Message);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Missing_directory_fails_with_the_target_in_the_message()
    {
        var path = Path.Combine(dir.Path, "no-such-dir", "model.safetensors");
        var ex = Assert.Throws<IOException>(() => AtomicFile.Write(path, s => s.WriteByte(1)));
        Assert.Contains(path, ex.Message);
    }
}
