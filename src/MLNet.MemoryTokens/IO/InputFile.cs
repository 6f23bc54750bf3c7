using System.Runtime.InteropServices;
using System.Text;

namespace MLNet.MemoryTokens.IO;

/// <summary>A file the user gave us could not be read as one: missing, not a regular file, or beyond its size limit.
/// The message names the path.</summary>
public sealed class InputFileException(string path, string message, Exception? inner = null) : IOException(message, inner)
{
    public string FilePath { get; } = path;
}

/// <summary>Every file we read on a user's behalf goes through here: only a regular file (symbolic links followed) is opened,
/// and only up to a size limit, so a FIFO cannot hang a run, <c>/dev/zero</c> cannot exhaust memory and a directory or a
/// socket gets a clear error naming it.</summary>
/// <remarks>On Linux the file type and size come from <c>statx(2)</c> before anything is opened (opening a FIFO blocks until
/// a writer appears). Elsewhere the managed checks apply: it exists, is not a directory, and no more than the limit is read.</remarks>
public static class InputFile
{
    /// <summary>Throws an <see cref="InputFileException"/> unless <paramref name="path"/> is a regular file of at most
    /// <paramref name="maxBytes"/> bytes; returns its length.</summary>
    /// <param name="what">What the file is, for the message ("image", "checkpoint", "image list").</param>
    public static long Check(string path, long maxBytes, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = Stat(path);
        if (info is null)
        {
            if (Directory.Exists(path)) throw new InputFileException(path, $"{Capital(what)} '{path}' is a folder, not a file.");
            throw new InputFileException(path, $"{Capital(what)} '{path}' does not exist.", new FileNotFoundException(null, path));
        }
        var (kind, length) = info.Value;
        if (kind != FileKind.Regular)
            throw new InputFileException(path, $"{Capital(what)} '{path}' is {Describe(kind)}, not a regular file: only regular files are read.");
        if (length > maxBytes)
            throw new InputFileException(path, $"{Capital(what)} '{path}' is {length:N0} bytes, beyond the limit of {maxBytes:N0} for {Plural(what)}.");
        return length;
    }

    /// <summary>The whole file, after <see cref="Check"/>; reading stops (with the same error) if it grows past the limit meanwhile.</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        long length = Check(path, maxBytes, what);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var buffer = new MemoryStream((int)Math.Min(length, Array.MaxLength));
        var chunk = new byte[1 << 16];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + n > maxBytes)
                throw new InputFileException(path, $"{Capital(what)} '{path}' holds more than the limit of {maxBytes:N0} bytes for {Plural(what)}.");
            buffer.Write(chunk, 0, n);
        }
        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }

    /// <summary>The file as UTF-8 text, after <see cref="Check"/>.</summary>
    public static string ReadAllText(string path, long maxBytes, string what) =>
        new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetString(ReadAllBytes(path, maxBytes, what)).TrimStart('\uFEFF');

    /// <summary>A read-only stream over the file, after <see cref="Check"/> (the caller reads no more than it needs).</summary>
    public static FileStream OpenRead(string path, long maxBytes, string what)
    {
        Check(path, maxBytes, what);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    /// <summary>The file's lines, after <see cref="Check"/>.</summary>
    public static IEnumerable<string> ReadLines(string path, long maxBytes, string what)
    {
        Check(path, maxBytes, what);
        return File.ReadLines(path);
    }

    /// <summary>What a path is, following symbolic links.</summary>
    public enum FileKind { Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, Other }

    /// <summary>Kind and length of <paramref name="path"/> (links followed), or null when nothing is there (or a link dangles).</summary>
    public static (FileKind Kind, long Length)? Stat(string path)
    {
        switch (Statx.TryStat(path, out var kind, out long length, out _))
        {
            case Statx.Result.Found: return (kind, length);
            case Statx.Result.Missing: return null;
        }
        if (Directory.Exists(path)) return (FileKind.Directory, 0);   // no statx here: the managed view
        var file = new FileInfo(path);
        return file.Exists ? (FileKind.Regular, file.Length) : null;
    }

    /// <summary>Device and inode of <paramref name="path"/> (links followed), or null where statx is unavailable: how a folder
    /// walk recognises a folder it has already been in.</summary>
    public static (ulong Device, ulong Inode)? Identity(string path) =>
        Statx.TryStat(path, out _, out _, out var id) == Statx.Result.Found ? id : null;

    static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a folder",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        _ => "a special file",
    };

    static string Capital(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
    static string Plural(string what) => what.EndsWith('s') ? what : what + "s";

    /// <summary>statx(2) through the C library (glibc ≥ 2.28, musl ≥ 1.2.5): its struct has one layout on every Linux
    /// architecture, unlike struct stat. Reads only the fields named in the mask it asks for.</summary>
    static class Statx
    {
        const int AtFdCwd = -100;
        const uint StatxType = 0x1, StatxIno = 0x100, StatxSize = 0x200;
        const int BufferBytes = 256;   // sizeof(struct statx)

        [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
        static extern unsafe int Call(int dirfd, byte* path, int flags, uint mask, byte* buffer);

        static bool _unavailable = !OperatingSystem.IsLinux();

        public enum Result { Found, Missing, Unknown }

        public static unsafe Result TryStat(string path, out FileKind kind, out long length, out (ulong, ulong) identity)
        {
            kind = FileKind.Other; length = 0; identity = default;
            if (_unavailable) return Result.Unknown;
            byte* buffer = stackalloc byte[BufferBytes];
            new Span<byte>(buffer, BufferBytes).Clear();
            int byteCount = Encoding.UTF8.GetByteCount(path);
            if (byteCount > 8192) return Result.Unknown;
            byte* name = stackalloc byte[byteCount + 1];
            Encoding.UTF8.GetBytes(path, new Span<byte>(name, byteCount));
            name[byteCount] = 0;
            int rc;
            try { rc = Call(AtFdCwd, name, 0, StatxType | StatxSize | StatxIno, buffer); }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                _unavailable = true;
                return Result.Unknown;
            }
            if (rc != 0) return Marshal.GetLastPInvokeError() is 2 or 20 ? Result.Missing : Result.Unknown;   // ENOENT, ENOTDIR
            // struct statx: stx_mode u16 at 28, stx_ino u64 at 32, stx_size u64 at 40, stx_dev_major/minor u32 at 136/140
            int mode = *(ushort*)(buffer + 28) & 0xF000;
            kind = mode switch
            {
                0x8000 => FileKind.Regular,
                0x4000 => FileKind.Directory,
                0x1000 => FileKind.Fifo,
                0x2000 => FileKind.CharacterDevice,
                0x6000 => FileKind.BlockDevice,
                0xC000 => FileKind.Socket,
                _ => FileKind.Other,
            };
            length = (long)Math.Min(*(ulong*)(buffer + 40), long.MaxValue);
            identity = (((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140), *(ulong*)(buffer + 32));
            return Result.Found;
        }
    }
}
