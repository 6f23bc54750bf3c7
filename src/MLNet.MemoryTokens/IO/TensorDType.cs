namespace MLNet.MemoryTokens.IO;

/// <summary>Element type a checkpoint is written in; in memory every tensor is F32.</summary>
public enum TensorDType
{
    F32,
    F16,
    BF16,
}
