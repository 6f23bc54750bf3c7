namespace MLNet.MemoryTokens.IO;

/// <summary>Naming and layout conventions a ViT checkpoint can come in.</summary>
public enum CheckpointLayout
{
    /// <summary>timm's <c>VisionTransformer</c> state dict: the canonical names used everywhere in this library.</summary>
    Timm,

    /// <summary>Hugging Face transformers <c>ViTModel</c> / <c>ViTForImageClassification</c> (split query/key/value).</summary>
    HuggingFace,

    /// <summary>Google big_vision / AugReg <c>.npz</c> (Flax kernels [in, out], attention split per head).</summary>
    BigVision,
}
