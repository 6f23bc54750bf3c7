namespace MLNet.MemoryTokens.Tuning;

/// <summary>How a backbone is adapted to a new task: a key into the method table (<see cref="TuningMethods"/>).</summary>
public enum TuningMethod
{
    /// <summary>Linear probe on the final-norm class token; features computed once.</summary>
    HeadOnly,
    /// <summary>New head and the class token.</summary>
    HeadAndClassToken,
    /// <summary>Memory tokens per layer (Sandler et al. 2022), plus class token and head.</summary>
    Memory,
    /// <summary>Every weight, plus a new head.</summary>
    Full,
    /// <summary>Visual Query Tuning (Tu et al. 2023): query tokens per layer that only read; the backbone pass is cached.</summary>
    Vqt,
    /// <summary>VQT queries reading a memory-adapted stream: memory, class token, queries and head trained together.</summary>
    VqtMemory,
}
