namespace MLNet.MemoryTokens.IO;

/// <summary>Element types the readers understand on disk (all widened to float on load).</summary>
internal enum ElementType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool }

internal static class ElementTypes
{
    public static int Size(this ElementType t) => t switch
    {
        ElementType.F64 or ElementType.I64 => 8,
        ElementType.F32 or ElementType.I32 => 4,
        ElementType.F16 or ElementType.BF16 or ElementType.I16 => 2,
        _ => 1,
    };

    /// <summary>The safetensors dtype string ("F32", "BF16", …), or null for one we cannot widen to float.</summary>
    public static ElementType? FromSafeTensors(string dtype) => dtype switch
    {
        "F64" => ElementType.F64,
        "F32" => ElementType.F32,
        "F16" => ElementType.F16,
        "BF16" => ElementType.BF16,
        "I64" => ElementType.I64,
        "I32" => ElementType.I32,
        "I16" => ElementType.I16,
        "I8" => ElementType.I8,
        "U8" => ElementType.U8,
        "BOOL" => ElementType.Bool,
        _ => null,
    };

    public static ElementType From(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => ElementType.F32,
        TensorDType.F16 => ElementType.F16,
        TensorDType.BF16 => ElementType.BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    public static string SafeTensorsName(this ElementType t) => t == ElementType.Bool ? "BOOL" : t.ToString().ToUpperInvariant();
}
