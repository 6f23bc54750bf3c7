namespace MLNet.MemoryTokens.IO;

/// <summary>Naming and layout conventions a ViT checkpoint can come in.</summary>
public enum CheckpointLayout
{
    /// <summary>timm's <c>VisionTransformer</c> state dict: the canonical names used everywhere in this library.</summary>
    Timm,

    /// <summary>Hugging Face transformers ViT-family models (split query/key/value): <c>ViTModel</c> /
    /// <c>ViTForImageClassification</c>, DeiT (with teacher), <c>Dinov2Model</c>, <c>Dinov2WithRegistersModel</c>.</summary>
    HuggingFace,

    /// <summary>Google big_vision / AugReg <c>.npz</c> (Flax kernels [in, out], attention split per head).</summary>
    BigVision,

    /// <summary>Hugging Face transformers <c>CLIPVisionModel</c> / <c>CLIPModel</c> (<c>vision_model.</c>; QuickGELU by its default config).</summary>
    HuggingFaceClip,

    /// <summary>OpenAI CLIP / OpenCLIP (<c>visual.</c>: <c>conv1</c>, <c>transformer.resblocks</c>, <c>proj</c>).</summary>
    OpenClip,
}
