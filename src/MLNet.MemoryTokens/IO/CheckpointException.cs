namespace MLNet.MemoryTokens.IO;

/// <summary>A checkpoint could not be read or does not fit: names the file and the tensor key or byte offset at fault.</summary>
public sealed class CheckpointException : Exception
{
    /// <summary>The file at fault, or null when raised by a pure function (the caller adds it, see <see cref="WithFile"/>).</summary>
    public string? FilePath { get; }

    /// <summary>The tensor key (or zip entry) at fault, when there is one.</summary>
    public string? Key { get; }

    /// <summary>The byte offset in the file at fault, when there is one.</summary>
    public long? ByteOffset { get; }

    /// <summary>The message without the file name in front.</summary>
    public string Detail { get; }

    public CheckpointException(string? filePath, string detail, string? key = null, long? byteOffset = null, Exception? inner = null)
        : base(filePath is null ? detail : $"{filePath}: {detail}", inner)
    {
        FilePath = filePath;
        Detail = detail;
        Key = key;
        ByteOffset = byteOffset;
    }

    /// <summary>For a message that already names the file (e.g. a model rejecting the loaded shapes).</summary>
    public CheckpointException(string message, Exception? inner = null) : base(message, inner)
    {
        Detail = message;
    }

    /// <summary>The same error attributed to <paramref name="filePath"/> (unchanged if it already names a file).</summary>
    public CheckpointException WithFile(string filePath) =>
        FilePath is not null ? this : new CheckpointException(filePath, Detail, Key, ByteOffset, InnerException ?? this);
}
