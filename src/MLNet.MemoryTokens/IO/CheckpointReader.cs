namespace MLNet.MemoryTokens.IO;

/// <summary>Opens any supported checkpoint file (safetensors or .npz, told apart by their first bytes) as a timm-named F32 state dict.</summary>
public static class CheckpointReader
{
    /// <summary>Reads <paramref name="path"/> and converts a Hugging Face or big_vision layout to timm names and layouts.</summary>
    /// <exception cref="CheckpointException">Unreadable, corrupt or unrecognised; the message names the file and the key or offset.</exception>
    public static Dictionary<string, Tensor> ReadTimmStateDict(string path) => ReadTimmStateDict(path, out _);

    /// <inheritdoc cref="ReadTimmStateDict(string)"/>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="ignored">Keys dropped on purpose by the conversion (a Hugging Face pooler, optimizer state).</param>
    public static Dictionary<string, Tensor> ReadTimmStateDict(string path, out IReadOnlyList<string> ignored) => ReadTimmStateDict(path, out ignored, out _);

    /// <inheritdoc cref="ReadTimmStateDict(string)"/>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="ignored">Keys dropped on purpose by the conversion (a Hugging Face pooler, optimizer state).</param>
    /// <param name="layout">The layout the file came in (what its conventions imply for what the weights cannot tell).</param>
    public static Dictionary<string, Tensor> ReadTimmStateDict(string path, out IReadOnlyList<string> ignored, out CheckpointLayout layout)
    {
        var raw = ReadTensors(path);
        try
        {
            layout = CheckpointMapper.Detect(raw.Keys.ToArray());
            return CheckpointMapper.ToTimm(raw, out ignored);
        }
        catch (CheckpointException ex)
        {
            throw ex.WithFile(path);
        }
    }

    /// <summary>Every tensor in <paramref name="path"/> under its own name, widened to F32, without any renaming.</summary>
    public static IReadOnlyDictionary<string, Tensor> ReadTensors(string path) => Sniff(path) switch
    {
        Format.Zip => NpzFile.Read(path),
        Format.SafeTensors => SafeTensorsFile.Read(path).Tensors,
        _ => throw new CheckpointException(path,
            "neither a safetensors file (8-byte length then '{') nor an .npz (zip) archive, judging by its first bytes", byteOffset: 0),
    };

    enum Format { Unknown, SafeTensors, Zip }

    static Format Sniff(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        InputFile.Check(path, Limits.MaxCheckpointBytes, "checkpoint");
        Span<byte> head = stackalloc byte[9];
        int n;
        using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read))
            n = RandomAccess.Read(file, head, 0);
        head = head[..n];
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8)) return Format.Zip;  // local file header / empty archive
        // Too short to tell: the safetensors reader explains exactly how it is truncated.
        return n < 9 || head[8] == (byte)'{' ? Format.SafeTensors : Format.Unknown;
    }
}
