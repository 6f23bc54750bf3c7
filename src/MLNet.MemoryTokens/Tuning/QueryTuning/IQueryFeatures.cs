namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>A VQT model whose feature vectors can be read (what its head reads: <see cref="QueryTunedVit"/> on the managed
/// engine, another backend's VQT model elsewhere): what <see cref="QueryFeaturizer"/>, <c>mmt featurize</c> and the ML.NET
/// featurizer serve.</summary>
public interface IQueryFeatures : ITunedModel
{
    /// <summary>Width of a feature vector: D·(1 + L·T), or the kept features' count after compression.</summary>
    int HeadInput { get; }

    /// <summary>Feature vectors [B, <see cref="HeadInput"/>] of normalised images [B, 3, S, S] (no dropout).</summary>
    Tensor Features(Tensor images);
}
