#!/usr/bin/python3
"""Exports the reference ViT (vit_reference.py, timm's architecture) to ONNX with PyTorch's own exporter: the graph ONNX
Runtime runs as the inference anchor of `mmt bench infer` (an independent export, not our engine's `mmt export-onnx`).

  /usr/bin/python3 reference/export_onnx.py --arch vit_small --image-size 224 --out /tmp/vit_small_224.onnx
  /usr/bin/python3 reference/export_onnx.py --model vit_tiny.safetensors --out vit_tiny.onnx

Random weights of the architecture's shape unless --model is given (the compute is the same). Input "images"
[batch, 3, S, S] with a dynamic batch axis, output "logits" [batch, classes]; opset 17 (LayerNormalization as one op).
torch.onnx.export writes the protobuf itself: the `onnx` package is not needed.
"""
import argparse, os, sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from vit_reference import VisionTransformer, load_timm_state_dict  # noqa: E402

# timm's shapes (patch 16): width, depth, heads; MLP 4x width
ARCHS = {"vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6), "vit_base": (768, 12, 12)}


def build(arch, image_size, model_path=None, classes=1000):
    if model_path:
        return VisionTransformer.from_state_dict(load_timm_state_dict(model_path), img_size=image_size)
    d, depth, heads = ARCHS[arch]
    torch.manual_seed(0)
    m = VisionTransformer(img_size=image_size, embed_dim=d, depth=depth, num_heads=heads, num_classes=classes)
    with torch.no_grad():   # timm-like init: trunc-normal 0.02 linears (PyTorch's default init is also fine for timing)
        for name, p in m.named_parameters():
            if p.dim() > 1 and "pos_embed" not in name:
                torch.nn.init.trunc_normal_(p, std=0.02)
    return m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", choices=sorted(ARCHS), default="vit_tiny")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--model", default=None, help="timm-named .safetensors checkpoint (default: random weights of --arch)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    model = build(args.arch, args.image_size, args.model).eval()
    x = torch.randn(1, 3, args.image_size, args.image_size)
    tmp = args.out + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, opset_version=17, input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    os.replace(tmp, args.out)   # a complete file or none
    print(args.out)


if __name__ == "__main__":
    main()
