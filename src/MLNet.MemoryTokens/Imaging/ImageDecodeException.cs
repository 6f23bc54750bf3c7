namespace MLNet.MemoryTokens.Imaging;

/// <summary>An image file could not be decoded; the message names the source and what is wrong with it.</summary>
public sealed class ImageDecodeException : Exception
{
    /// <summary>The file path, or the name given to <c>ImageDecoder.Decode</c> (e.g. <c>"&lt;stream&gt;"</c>).</summary>
    public new string Source { get; }

    /// <summary>The problem alone, without the source prefix.</summary>
    public string Reason { get; }

    /// <summary>True when the file looks valid but uses a feature this decoder does not implement.</summary>
    public bool IsNotSupported { get; }

    public ImageDecodeException(string source, string reason, bool isNotSupported = false, Exception? inner = null)
        : base($"{source}: {reason}", inner)
    {
        Source = source;
        Reason = reason;
        IsNotSupported = isNotSupported;
    }
}
