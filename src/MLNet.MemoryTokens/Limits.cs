namespace MLNet.MemoryTokens;

/// <summary>The largest sizes the engine accepts, checked where input enters — options, the command line, checkpoint, adapter
/// and data readers — so that no size reaching a kernel can overflow its arithmetic or ask for an absurd allocation.
/// docs/reliability.md lists each with its reason and its tests.</summary>
/// <remarks>Every limit is inclusive: a value equal to it is accepted, one beyond it refused with a
/// <see cref="LimitExceededException"/> naming the value, the limit and what to change.</remarks>
public static class Limits
{
    /// <summary>Input side of a model in pixels (<c>--image-size</c>, an adapter's <c>image_size</c>).</summary>
    public const int MaxImageSize = 1024;

    /// <summary>Patch tokens per image, (S/p)²: 64 × 64, i.e. 1024 px with 16-px patches. Attention scores grow with its
    /// square; one (sample, head) at this size is 4097² floats (64 MiB).</summary>
    public const int MaxPatchTokens = 4096;

    /// <summary>Memory tokens per layer (m).</summary>
    public const int MaxMemoryTokens = 256;

    /// <summary>VQT query tokens per layer (T).</summary>
    public const int MaxQueryTokens = 256;

    /// <summary>Tasks in one masked multi-task pass, or adapters one extension is trained on top of.</summary>
    public const int MaxTasks = 64;

    /// <summary>Classes of a task (head rows).</summary>
    public const int MaxClasses = 65_536;

    /// <summary>Images per forward pass or training step.</summary>
    public const int MaxBatch = 4096;

    /// <summary>Elements of one tensor or buffer: 2³⁰ floats (4 GiB). Checkpoint and adapter tensors beyond it are refused
    /// when read; a batch whose activations or attention scores would need one this large is refused before any is allocated.</summary>
    public const long MaxTensorElements = 1L << 30;

    /// <summary>An image file (JPEG, PNG, BMP, PPM/PGM).</summary>
    public const long MaxImageFileBytes = 256L << 20;

    /// <summary>A text file we read whole or line by line: an image list (CSV), class names, labels, adapter or training-state JSON.</summary>
    public const long MaxTextFileBytes = 256L << 20;

    /// <summary>An IDX file, after gunzip (a gzip bomb stops here).</summary>
    public const long MaxIdxBytes = 1L << 30;

    /// <summary>A checkpoint file (safetensors or .npz).</summary>
    public const long MaxCheckpointBytes = 64L << 30;

    /// <summary>Throws unless <paramref name="value"/> is in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    /// <param name="what">What the value is, as the user named it (e.g. "--image-size", "memory tokens").</param>
    public static int Check(string what, int value, int min, int max, string? hint = null)
    {
        if (value < min || value > max)
            throw new LimitExceededException(value < min
                ? $"{what} is {value}; it must be at least {min}."
                : $"{what} is {value}, beyond the limit of {max}.{(hint is null ? "" : " " + hint)}");
        return value;
    }

    /// <summary>Throws unless a buffer of <paramref name="elements"/> floats (computed by the caller in checked 64-bit
    /// arithmetic) is within <see cref="MaxTensorElements"/>.</summary>
    public static long CheckElements(string what, long elements, string? hint = null)
    {
        if (elements < 0 || elements > MaxTensorElements)
            throw new LimitExceededException(
                $"{what} would need {elements:N0} floats ({elements * 4.0 / (1L << 30):F1} GiB), beyond the limit of {MaxTensorElements:N0} for one buffer." +
                (hint is null ? "" : " " + hint));
        return elements;
    }

    /// <summary>The product of <paramref name="factors"/> in checked 64-bit arithmetic, saturating at <see cref="long.MaxValue"/>
    /// (so a check against a limit still fails instead of wrapping).</summary>
    public static long Product(params ReadOnlySpan<long> factors)
    {
        foreach (var f in factors)
        {
            if (f < 0) throw new ArgumentOutOfRangeException(nameof(factors), f, "A size cannot be negative.");
            if (f == 0) return 0;
        }
        long p = 1;
        foreach (var f in factors)
        {
            if (p > long.MaxValue / f) return long.MaxValue;
            p *= f;
        }
        return p;
    }
}

/// <summary>A size beyond one of the documented <see cref="Limits"/>: the message names the value, the limit and what to change.</summary>
public sealed class LimitExceededException(string message) : ArgumentException(message);
