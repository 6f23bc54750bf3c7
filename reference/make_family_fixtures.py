#!/usr/bin/python3
"""Parity fixtures for the backbone families: a tiny random model of each family in its REAL layout and names — timm's, and
where the family has one, Hugging Face transformers' (ViT-family models: DeiT with teacher, Dinov2Model,
Dinov2WithRegistersModel; CLIPVisionModelWithProjection) and OpenCLIP's — with the PyTorch reference's outputs and autograd
gradients for every tuning method (memory tokens plain and masked, head + class token, VQT, VQT + memory, full fine-tuning).

Run:  /usr/bin/python3 reference/make_family_fixtures.py   (writes tests/fixtures/parity/families/; deterministic)

Per family <f>:
  <f>.safetensors         the weights, timm names (F16 where a value is exactly a half, so the files stay small)
  <f>.hf.safetensors      the same weights in the Hugging Face layout (dinov2, dinov2_reg, deit_distilled, clip)
  <f>.openclip.safetensors the same weights in OpenAI/OpenCLIP's layout (clip)
  <f>.io.safetensors      inputs, outputs and gradients; metadata "config" (the family's timm arguments)
The weights are random (N(0, 0.2), norms and LayerScale around 1) and rounded to half precision, so that the F16 file holds
exactly what the reference computed with.
"""
import json, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io
from vit_reference import VisionTransformer, forward_adapted, forward_vqt, forward_vqt_memory, resample_abs_pos_embed

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "parity", "families")

TINY = dict(img_size=16, patch_size=4, embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=5)
FAMILIES = {
    # DeiT-III: LayerScale, no position for the class token
    "deit3": dict(TINY, no_embed_class=True, init_values=1.0),
    # DeiT distilled: a distillation token and its own head
    "deit_distilled": dict(TINY, distilled=True),
    # DINOv2: LayerScale, patch 14 (28 px = 2 x 2 patches)
    "dinov2": dict(TINY, img_size=28, patch_size=14, init_values=1.0),
    # DINOv2 with registers: + register tokens, no position for any prefix token
    "dinov2_reg": dict(TINY, img_size=28, patch_size=14, init_values=1.0, reg_tokens=4, no_embed_class=True),
    # OpenAI CLIP: norm_pre, no patch bias, QuickGELU, eps 1e-5, patch 8, the projection as a head without bias (16 wide, as
    # the SBB GAP model: the engine's vector paths, which need widths of 16)
    "clip": dict(TINY, embed_dim=16, patch_size=8, num_classes=6, pre_norm=True, act="quick_gelu", eps=1e-5),
    # timm's SBB GAP ViT: no class token, registers, LayerScale, average pooling with fc_norm
    "gap": dict(TINY, embed_dim=16, class_token=False, reg_tokens=2, no_embed_class=True, init_values=1.0, global_pool="avg"),
    # timm's SW GAP ViT: no class token, no qkv bias, LayerScale, final norm then the average (fc_norm=False)
    "gap_norm": dict(TINY, class_token=False, qkv_bias=False, init_values=1.0, global_pool="avg", fc_norm=False),
}
HF_LAYOUT = {"dinov2", "dinov2_reg", "deit_distilled", "clip"}
FULL_FINE_TUNING = {"clip", "gap", "deit_distilled"}
RESAMPLE = {"dinov2": 42, "dinov2_reg": 42, "deit_distilled": 24, "gap": 24}   # another input size: position embedding resampled
B, C, M, T = 2, 4, 3, 2   # batch, task classes, memory tokens, query tokens


def half(t):
    return t.half().float()


def build(name, cfg):
    torch.manual_seed(sum(map(ord, name)))
    m = VisionTransformer(**cfg)
    with torch.no_grad():
        for pname, p in m.named_parameters():
            p.copy_(torch.randn_like(p) * 0.2)
            if pname.endswith("norm1.weight") or pname.endswith("norm2.weight") or pname.endswith("norm.weight") or pname.endswith("norm_pre.weight") or pname.endswith(".gamma"):
                p.add_(1.0)
        if name == "clip":
            m.head.bias.zero_()   # OpenAI's projection has no bias: timm loads it as a zero-bias head
        for p in m.parameters():
            p.copy_(half(p))
    return m


def weights(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def save_weights(path, sd):
    """Each tensor as F16 when its values are halves, else F32 (a folded class token)."""
    out = {}
    for k, v in sd.items():
        v = v.detach().float()
        out[k] = v.numpy().astype(np.float16) if torch.equal(half(v), v) else v.numpy()
    safetensors_io.save(path, out)


# ---------------------------------------------------------------- the real layouts, from timm names

def split_qkv(sd, i):
    w, b = sd[f"blocks.{i}.attn.qkv.weight"], sd.get(f"blocks.{i}.attn.qkv.bias")
    d = w.shape[1]
    return [(w[j * d:(j + 1) * d], None if b is None else b[j * d:(j + 1) * d]) for j in range(3)]


def to_hf_vit_family(sd, depth, kind, prefix, dinov2_pos=None, dinov2_cls=None):
    """Hugging Face ViT-family names: DeiT (layernorm_before, intermediate/output.dense, distillation token and the two
    classifiers of DeiTForImageClassificationWithTeacher) or DINOv2 (norm1/norm2, mlp.fc1/fc2, layer_scale*.lambda1, mask_token;
    with registers: register_tokens, and the class token and position embedding as HF keeps them, pos[0] for the class token)."""
    hf = {}
    e = prefix + "embeddings."
    hf[e + "cls_token"] = sd["cls_token"] if dinov2_cls is None else dinov2_cls
    hf[e + "position_embeddings"] = sd["pos_embed"] if dinov2_pos is None else dinov2_pos
    hf[e + "patch_embeddings.projection.weight"] = sd["patch_embed.proj.weight"]
    hf[e + "patch_embeddings.projection.bias"] = sd["patch_embed.proj.bias"]
    if "dist_token" in sd:
        hf[e + "distillation_token"] = sd["dist_token"]
    if "reg_token" in sd:
        hf[e + "register_tokens"] = sd["reg_token"]
    if kind == "dinov2":
        hf[e + "mask_token"] = torch.zeros(1, sd["cls_token"].shape[-1])
    for i in range(depth):
        l, bk = f"{prefix}encoder.layer.{i}.", f"blocks.{i}."
        for part, (w, b) in zip(("query", "key", "value"), split_qkv(sd, i)):
            hf[l + f"attention.attention.{part}.weight"], hf[l + f"attention.attention.{part}.bias"] = w, b
        hf[l + "attention.output.dense.weight"], hf[l + "attention.output.dense.bias"] = sd[bk + "attn.proj.weight"], sd[bk + "attn.proj.bias"]
        names = {"norm1": "layernorm_before", "norm2": "layernorm_after", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"} if kind == "deit" \
            else {"norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
        for ours, theirs in names.items():
            hf[l + theirs + ".weight"], hf[l + theirs + ".bias"] = sd[bk + ours + ".weight"], sd[bk + ours + ".bias"]
        if kind == "dinov2":
            hf[l + "layer_scale1.lambda1"], hf[l + "layer_scale2.lambda1"] = sd[bk + "ls1.gamma"], sd[bk + "ls2.gamma"]
    hf[prefix + "layernorm.weight"], hf[prefix + "layernorm.bias"] = sd["norm.weight"], sd["norm.bias"]
    if kind == "deit":
        hf["cls_classifier.weight"], hf["cls_classifier.bias"] = sd["head.weight"], sd["head.bias"]
        hf["distillation_classifier.weight"], hf["distillation_classifier.bias"] = sd["head_dist.weight"], sd["head_dist.bias"]
    return hf


def to_hf_clip(sd, depth):
    """CLIPVisionModelWithProjection names (vision_model.*, pre_layrnorm, self_attn.{q,k,v,out}_proj, visual_projection)."""
    v = "vision_model."
    hf = {v + "embeddings.class_embedding": sd["cls_token"].reshape(-1),
          v + "embeddings.patch_embedding.weight": sd["patch_embed.proj.weight"],
          v + "embeddings.position_embedding.weight": sd["pos_embed"][0],
          v + "pre_layrnorm.weight": sd["norm_pre.weight"], v + "pre_layrnorm.bias": sd["norm_pre.bias"],
          v + "post_layernorm.weight": sd["norm.weight"], v + "post_layernorm.bias": sd["norm.bias"],
          "visual_projection.weight": sd["head.weight"]}
    for i in range(depth):
        l, bk = f"{v}encoder.layers.{i}.", f"blocks.{i}."
        for part, (w, b) in zip("qkv", split_qkv(sd, i)):
            hf[l + f"self_attn.{part}_proj.weight"], hf[l + f"self_attn.{part}_proj.bias"] = w, b
        for ours, theirs in {"attn.proj": "self_attn.out_proj", "norm1": "layer_norm1", "norm2": "layer_norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}.items():
            hf[l + theirs + ".weight"], hf[l + theirs + ".bias"] = sd[bk + ours + ".weight"], sd[bk + ours + ".bias"]
    hf["logit_scale"] = torch.tensor([4.6052])   # a CLIPModel's other tensors are dropped by the loader
    return hf


def to_openclip(sd, depth):
    """OpenAI CLIP / OpenCLIP names (visual.conv1, visual.transformer.resblocks.*.attn.in_proj_*, visual.proj [D, P])."""
    v = "visual."
    oc = {v + "conv1.weight": sd["patch_embed.proj.weight"], v + "class_embedding": sd["cls_token"].reshape(-1),
          v + "positional_embedding": sd["pos_embed"][0], v + "ln_pre.weight": sd["norm_pre.weight"], v + "ln_pre.bias": sd["norm_pre.bias"],
          v + "ln_post.weight": sd["norm.weight"], v + "ln_post.bias": sd["norm.bias"], v + "proj": sd["head.weight"].t().contiguous()}
    for i in range(depth):
        r, bk = f"{v}transformer.resblocks.{i}.", f"blocks.{i}."
        for ours, theirs in {"norm1": "ln_1", "attn.proj": "attn.out_proj", "norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}.items():
            oc[r + theirs + ".weight"], oc[r + theirs + ".bias"] = sd[bk + ours + ".weight"], sd[bk + ours + ".bias"]
        oc[r + "attn.in_proj_weight"], oc[r + "attn.in_proj_bias"] = sd[bk + "attn.qkv.weight"], sd[bk + "attn.qkv.bias"]
    oc["logit_scale"] = torch.tensor([4.6052])
    return oc


# ---------------------------------------------------------------- the methods

def ce(logits, labels):
    return F.cross_entropy(logits, labels, label_smoothing=0.1)


def run(name, cfg):
    m = build(name, cfg)
    sd = weights(m)
    os.makedirs(OUT, exist_ok=True)
    if name == "dinov2_reg":
        # DINOv2 with registers comes from Hugging Face with the class token's position in pos[0]; timm folds it into the class
        # token (cls + pos[0]) and keeps the patch rows (_convert_dinov2): the reference runs on the folded weights
        torch.manual_seed(5)
        pos0 = half(torch.randn(1, 1, sd["pos_embed"].shape[-1]) * 0.2)
        hf_cls, hf_pos = sd["cls_token"], torch.cat([pos0, sd["pos_embed"]], 1)
        sd["cls_token"] = hf_cls + pos0
        m.load_state_dict(sd)
        hf = to_hf_vit_family(sd, cfg["depth"], "dinov2", "", dinov2_pos=hf_pos, dinov2_cls=hf_cls)
        save_weights(os.path.join(OUT, f"{name}.hf.safetensors"), {k: v for k, v in hf.items()})
    elif name == "dinov2":
        save_weights(os.path.join(OUT, f"{name}.hf.safetensors"), to_hf_vit_family({k: v for k, v in sd.items() if not k.startswith("head.")}, cfg["depth"], "dinov2", ""))
    elif name == "deit_distilled":
        save_weights(os.path.join(OUT, f"{name}.hf.safetensors"), to_hf_vit_family(sd, cfg["depth"], "deit", "deit."))
    elif name == "clip":
        save_weights(os.path.join(OUT, f"{name}.hf.safetensors"), to_hf_clip(sd, cfg["depth"]))
        save_weights(os.path.join(OUT, f"{name}.openclip.safetensors"), to_openclip(sd, cfg["depth"]))
    save_weights(os.path.join(OUT, f"{name}.safetensors"), sd)

    torch.manual_seed(100 + len(name))
    size, D, L = cfg["img_size"], cfg["embed_dim"], cfg["depth"]
    x = half(torch.randn(B, 3, size, size))
    labels = torch.tensor([1, 3])
    out = {"images": x.numpy().astype(np.float16), "labels": labels.float()}
    with torch.no_grad():
        feats = m.forward_features(x)
        out.update({"features": feats, "pooled": m.forward_head(feats, pre_logits=True), "logits": m.forward_head(feats)})
    if name in RESAMPLE:
        s = RESAMPLE[name]
        m2 = VisionTransformer.from_state_dict(sd, img_size=s, num_heads=cfg["num_heads"], eps=cfg.get("eps"), act=cfg.get("act", "gelu"))
        x2 = half(torch.randn(1, 3, s, s))
        with torch.no_grad():
            out.update({"resampled.images": x2.numpy().astype(np.float16), "resampled.pos_embed": m2.pos_embed, "resampled.logits": m2(x2)})

    has_cls = m.cls_token is not None
    memory0, head_w0, head_b0 = torch.randn(L, M, D) * 0.5, torch.randn(C, D) * 0.3, torch.randn(C) * 0.1
    task_cls0 = sd["cls_token"].clone() if has_cls else torch.randn(1, 1, D) * 0.5   # a masked task's token on a model without one
    out.update({"memory": memory0, "head.weight": head_w0, "head.bias": head_b0, "masked.cls_init": task_cls0})

    def record(prefix, logits, params):
        loss = ce(logits, labels)
        loss.backward()
        out.update({f"{prefix}.logits": logits, f"{prefix}.loss": loss.reshape(1)})
        for pname, p in params.items():
            out[f"{prefix}.grad.{pname}"] = p.grad

    # memory tokens, plain (the class token trains when there is one) and masked (the task's own row)
    for variant, masked in (("plain", False), ("masked", True)):
        memory = memory0.clone().requires_grad_()
        cls = (task_cls0 if masked else sd["cls_token"]).clone().requires_grad_() if masked or has_cls else None
        hw, hb = head_w0.clone().requires_grad_(), head_b0.clone().requires_grad_()
        params = {"memory": memory, "head.weight": hw, "head.bias": hb}
        if cls is not None:
            params["cls_token"] = cls
        record(variant, forward_adapted(m, x, memory, cls, masked, (hw, hb)), params)
    # head + class token (models with one), the linear probe's logits come with it
    if has_cls:
        cls = sd["cls_token"].clone().requires_grad_()
        hw, hb = head_w0.clone().requires_grad_(), head_b0.clone().requires_grad_()
        record("headcls", forward_adapted(m, x, None, cls, False, (hw, hb)), {"cls_token": cls, "head.weight": hw, "head.bias": hb})
    # VQT, and VQT + memory
    queries0 = torch.randn(L, T, D) * 0.5
    vqt_w0, vqt_b0 = torch.randn(C, D * (1 + L * T)) * 0.3, torch.randn(C) * 0.1
    out.update({"queries": queries0, "vqt.head.weight": vqt_w0, "vqt.head.bias": vqt_b0})
    q, hw, hb = queries0.clone().requires_grad_(), vqt_w0.clone().requires_grad_(), vqt_b0.clone().requires_grad_()
    record("vqt", forward_vqt(m, x, q, (hw, hb)), {"queries": q, "head.weight": hw, "head.bias": hb})
    memory, q = memory0.clone().requires_grad_(), queries0.clone().requires_grad_()
    hw, hb = vqt_w0.clone().requires_grad_(), vqt_b0.clone().requires_grad_()
    params = {"memory": memory, "queries": q, "head.weight": hw, "head.bias": hb}
    cls = sd["cls_token"].clone().requires_grad_() if has_cls else None
    if cls is not None:
        params["cls_token"] = cls
    record("vqtmemory", forward_vqt_memory(m, x, memory, cls, q, (hw, hb)), params)
    # full fine-tuning: every backbone weight (the heads excluded) and a new head on the pooled output
    if name in FULL_FINE_TUNING:
        full = VisionTransformer.from_state_dict(sd, num_heads=cfg["num_heads"], eps=cfg.get("eps"), act=cfg.get("act", "gelu"))
        hw, hb = head_w0.clone().requires_grad_(), head_b0.clone().requires_grad_()
        params = {"backbone." + k: p for k, p in full.named_parameters() if not (k.startswith("head.") or k.startswith("head_dist."))}
        params.update({"head.weight": hw, "head.bias": hb})
        record("full", forward_adapted(full, x, None, None, False, (hw, hb)), params)
    meta = {k: v for k, v in cfg.items()}
    safetensors_io.save(os.path.join(OUT, f"{name}.io.safetensors"), out, {"config": json.dumps(meta, sort_keys=True)})


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, cfg in FAMILIES.items():
        run(name, cfg)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1024:.0f} KiB, to {os.path.normpath(OUT)}")
