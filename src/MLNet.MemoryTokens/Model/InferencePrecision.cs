using System.Diagnostics.CodeAnalysis;

namespace MLNet.MemoryTokens.Model;

/// <summary>How the frozen backbone's Linear layers run when no gradient is needed (<see cref="VisionTransformer.InferencePrecision"/>).</summary>
public enum InferencePrecision
{
    /// <summary>Single precision: the reference, bit-for-bit what training sees.</summary>
    Fp32,
    /// <summary>int16 weights (per output channel) and activations (per row, at run time), exact int32 accumulation, with as
    /// many bits as K allows (<see cref="Kernels.QuantizedFormat.Int16"/>): faster than fp32 on AVX-512BW CPUs; top-1 agreement
    /// with fp32 99.87 % on Fashion-MNIST's test set (docs/benchmarks.md).</summary>
    Int16,
    /// <summary>int8 weights (7-bit, per output channel) and uint8 activations (per row, at run time): the fastest, but below
    /// the 99.5 % top-1 agreement with fp32 we ship at (98.05 % on Fashion-MNIST's test set, docs/benchmarks.md): for
    /// benchmarks and experiments, not offered by the CLI's predict / evaluate / featurize or the ML.NET options.</summary>
    [Experimental(ExperimentalApis.Int8Inference)]
    Int8,
}

/// <summary>Ids of this library's experimental APIs (suppress one to use what it marks).</summary>
public static class ExperimentalApis
{
    /// <summary><see cref="InferencePrecision.Int8"/>: below the agreement gate.</summary>
    public const string Int8Inference = "MMT0001";
}
