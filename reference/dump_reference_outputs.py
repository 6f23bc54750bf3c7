#!/usr/bin/python3
"""Runs the PyTorch reference ViT on a seeded input tensor and dumps images, features and logits, so that
`mmt check-parity --model M --reference OUT` can report our largest difference on a real checkpoint.

  /usr/bin/python3 reference/dump_reference_outputs.py --model ../shared/models/vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors --out /tmp/ref.safetensors
"""
import argparse, os, sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io
from vit_reference import VisionTransformer, load_timm_state_dict

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--out", required=True)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--image-size", type=int, default=None)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--num-heads", type=int, default=None, help="attention heads (default: width / 64)")
p.add_argument("--act", default="gelu", choices=["gelu", "quick_gelu"], help="the MLP activation (quick_gelu: OpenAI CLIP)")
p.add_argument("--images", nargs="*", default=None, help="real photos (PPM/JPEG via PIL) preprocessed as timm's eval transform instead of a random tensor")
a = p.parse_args()
torch.manual_seed(a.seed)
model = VisionTransformer.from_state_dict(load_timm_state_dict(a.model), img_size=a.image_size, num_heads=a.num_heads, act=a.act).eval()
size = a.image_size or model.grid * model.patch_size
if a.images:
    from PIL import Image
    import numpy as np
    scale = int(size / 0.9)  # timm eval transform of this family: crop fraction 0.9, bicubic, mean = std = 0.5
    batch = []
    for path in a.images:
        im = Image.open(path).convert("RGB")
        w, h = im.size
        nw, nh = (scale, int(scale * h / w)) if w <= h else (int(scale * w / h), scale)
        im = im.resize((nw, nh), Image.BICUBIC)
        left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
        im = im.crop((left, top, left + size, top + size))
        batch.append((torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) - 0.5) / 0.5)
    x = torch.stack(batch)
else:
    x = torch.randn(a.batch, 3, size, size)
with torch.no_grad():
    feats = model.forward_features(x)
    logits = model.forward_head(feats)
safetensors_io.save(a.out, {"images": x, "features": feats, "logits": logits}, {"model": os.path.basename(a.model), "image_size": size})
print(f"wrote {a.out}: images {tuple(x.shape)}, features {tuple(feats.shape)}, logits {tuple(logits.shape)}")
