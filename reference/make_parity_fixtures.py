#!/usr/bin/python3
"""Dumps the PyTorch reference values our C# tests compare against (llm.c style): small random inputs, outputs and
autograd gradients for every kernel, a small random ViT with its features and logits, and resampled position embeddings.

Run:  /usr/bin/python3 reference/make_parity_fixtures.py   (writes tests/fixtures/parity/*.safetensors; deterministic)
"""
import json, os, sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io
from vit_reference import VisionTransformer, forward_adapted, forward_vqt, forward_vqt_memory, resample_abs_pos_embed

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "parity")


def grads(out, dy, *inputs):
    return torch.autograd.grad(out, inputs, dy)


def kernels():
    g = torch.Generator().manual_seed(1234)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64).float()
    t = {}
    # LayerNorm over the last dim, eps 1e-6
    x, w, b, dy = r(6, 37).requires_grad_(), (1 + 0.1 * r(37)).requires_grad_(), r(37).requires_grad_(), r(6, 37)
    y = F.layer_norm(x, (37,), w, b, 1e-6)
    dx, dw, db = grads(y, dy, x, w, b)
    t.update({"ln.x": x, "ln.w": w, "ln.b": b, "ln.dy": dy, "ln.y": y, "ln.dx": dx, "ln.dw": dw, "ln.db": db})
    # exact GELU over a wide range plus the tails
    x = torch.cat([torch.linspace(-8, 8, 1601), 3 * r(399)]).requires_grad_()
    dy = r(2000)
    y = F.gelu(x)
    (dx,) = grads(y, dy, x)
    t.update({"gelu.x": x, "gelu.dy": dy, "gelu.y": y, "gelu.dx": dx})
    # softmax of scaled logits
    x, dy = (3 * r(7, 33)).requires_grad_(), r(7, 33)
    p = torch.softmax(0.37 * x, -1)
    (dx,) = grads(p, dy, x)
    t.update({"softmax.x": x, "softmax.dy": dy, "softmax.p": p, "softmax.dx": dx})
    # Linear
    x, w, b, dy = r(13, 19).requires_grad_(), r(23, 19).requires_grad_(), r(23).requires_grad_(), r(13, 23)
    y = F.linear(x, w, b)
    dx, dw, db = grads(y, dy, x, w, b)
    t.update({"linear.x": x, "linear.w": w, "linear.b": b, "linear.dy": dy, "linear.y": y, "linear.dx": dx, "linear.dw": dw, "linear.db": db})
    # Attention over a packed qkv buffer [B, S, 3D]: D = 16, H = 2, d = 8, B = 2, S = 11, three layouts
    B, S, H, d = 2, 11, 2, 8
    D = H * d
    qkv = r(B, S, 3 * D)
    for name, (q0, nq, k0, nk) in {"self": (0, 11, 0, 11), "memory": (0, 8, 0, 11), "readonly": (8, 3, 0, 8)}.items():
        x = qkv.clone().requires_grad_()
        h = x.reshape(B, S, 3, H, d).permute(2, 0, 3, 1, 4)
        q, k, v = h[0][:, :, q0:q0 + nq], h[1][:, :, k0:k0 + nk], h[2][:, :, k0:k0 + nk]
        a = torch.softmax((q @ k.transpose(-2, -1)) * d ** -0.5, -1)
        out = (a @ v).transpose(1, 2).reshape(B, nq, D)
        dout = r(B, nq, D)
        (dqkv,) = grads(out, dout, x)
        t.update({f"attn.{name}.out": out, f"attn.{name}.dout": dout, f"attn.{name}.dqkv": dqkv,
                  f"attn.{name}.layout": torch.tensor([q0, nq, k0, nk], dtype=torch.float32)})
    t["attn.qkv"] = qkv
    # position-embedding resampling (grid 4 -> 2, 3, 6), prefix 1, D = 8
    pos = r(1, 17, 8)
    t["pos.src"] = pos
    for n in (2, 3, 6):
        t[f"pos.to{n}"] = resample_abs_pos_embed(pos, (n, n))
    safetensors_io.save(os.path.join(OUT, "kernels.safetensors"), t, {"generator": "reference/make_parity_fixtures.py"})


def vit():
    torch.manual_seed(7)
    cfg = dict(img_size=16, patch_size=4, num_classes=5, embed_dim=32, depth=2, num_heads=2)
    m = VisionTransformer(**cfg).double()
    with torch.no_grad():  # make every weight non-trivial (timm zero-inits some biases; the test must see them all)
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        for blk in m.blocks:
            blk.norm1.weight.add_(1.0)
            blk.norm2.weight.add_(1.0)
        m.norm.weight.add_(1.0)
    m = m.float()
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    safetensors_io.save(os.path.join(OUT, "vit_random.safetensors"), sd, {"config": json.dumps(cfg)})
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        feats = m.forward_features(x)
        logits = m.forward_head(feats)
    safetensors_io.save(os.path.join(OUT, "vit_random_io.safetensors"), {"images": x, "features": feats, "logits": logits},
                        {"config": json.dumps(cfg)})
    # the same weights at 8x8 input (position embedding resampled 4x4 -> 2x2), as timm would load them
    m8 = VisionTransformer.from_state_dict(sd, img_size=8, num_heads=2)
    x8 = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        logits8 = m8(x8)
    safetensors_io.save(os.path.join(OUT, "vit_random_io8.safetensors"), {"images": x8, "logits": logits8, "pos_embed": m8.pos_embed})


def memory_tokens():
    """Gradients of memory, class token and a new head under CE with label smoothing 0.1, plain and masked, and of every
    weight under full fine-tuning, for the small random ViT of vit()."""
    sd, _ = safetensors_io.load(os.path.join(OUT, "vit_random.safetensors"))
    torch.manual_seed(11)
    B, C, m, L, D = 3, 4, 3, 2, 32
    x = torch.randn(B, 3, 16, 16)
    labels = torch.tensor([2, 0, 3])
    memory0 = torch.randn(L, m, D) * 0.5          # larger than the N(0, 0.02) init so the test sees real gradients
    head_w0, head_b0 = torch.randn(C, D) * 0.3, torch.randn(C) * 0.1
    out = {"images": x, "labels": labels.float(), "memory": memory0, "head.weight": head_w0, "head.bias": head_b0}
    for variant, masked in (("plain", False), ("masked", True)):
        model = VisionTransformer.from_state_dict(sd, num_heads=2)
        memory = memory0.clone().requires_grad_()
        cls = model.cls_token.detach().clone().requires_grad_()
        hw, hb = head_w0.clone().requires_grad_(), head_b0.clone().requires_grad_()
        logits = forward_adapted(model, x, memory, cls, masked, (hw, hb))
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        loss.backward()
        out.update({f"{variant}.logits": logits, f"{variant}.loss": loss.reshape(1), f"{variant}.grad.memory": memory.grad,
                    f"{variant}.grad.cls_token": cls.grad, f"{variant}.grad.head.weight": hw.grad, f"{variant}.grad.head.bias": hb.grad})
    # full fine-tuning: every backbone weight trainable, new head, no memory
    model = VisionTransformer.from_state_dict(sd, num_heads=2)
    hw, hb = head_w0.clone().requires_grad_(), head_b0.clone().requires_grad_()
    logits = forward_adapted(model, x, None, None, False, (hw, hb))
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
    loss.backward()
    out.update({"full.logits": logits, "full.loss": loss.reshape(1), "full.grad.head.weight": hw.grad, "full.grad.head.bias": hb.grad})
    for name, p in model.named_parameters():
        if not name.startswith("head."):
            out[f"full.grad.backbone.{name}"] = p.grad
    # the masked model's original head is untouched: its logits equal the plain backbone's
    safetensors_io.save(os.path.join(OUT, "memory_tokens.safetensors"), out)


def vqt():
    """Gradients of VQT query tokens and head (T = 2, 4 classes) under CE with label smoothing 0.1, for the small random ViT."""
    sd, _ = safetensors_io.load(os.path.join(OUT, "vit_random.safetensors"))
    torch.manual_seed(13)
    model = VisionTransformer.from_state_dict(sd, num_heads=2)
    B, C, T, L, D = 3, 4, 2, 2, 32
    x = torch.randn(B, 3, 16, 16)
    labels = torch.tensor([1, 3, 0])
    queries = (torch.randn(L, T, D) * 0.5).requires_grad_()
    F_dim = D * (1 + L * T)
    hw, hb = (torch.randn(C, F_dim) * 0.3).requires_grad_(), (torch.randn(C) * 0.1).requires_grad_()
    out = {"images": x, "labels": labels.float(), "queries": queries.detach().clone(), "head.weight": hw.detach().clone(), "head.bias": hb.detach().clone()}
    logits = forward_vqt(model, x, queries, (hw, hb))
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
    loss.backward()
    out.update({"logits": logits, "loss": loss.reshape(1), "grad.queries": queries.grad, "grad.head.weight": hw.grad, "grad.head.bias": hb.grad})
    # composed with memory tokens (m = 3): memory, class token, queries and head trained together; "memory." the queries
    # reading the originals and the memory (the default), "memory_skip." the originals only (QueriesReadMemory = false)
    memory0 = torch.randn(L, 3, D) * 0.5
    out["memory.memory"] = memory0.clone()
    for prefix, reads in (("memory", True), ("memory_skip", False)):
        memory = memory0.clone().requires_grad_()
        cls = model.cls_token.detach().clone().requires_grad_()
        q2 = queries.detach().clone().requires_grad_()
        hw2, hb2 = hw.detach().clone().requires_grad_(), hb.detach().clone().requires_grad_()
        logits = forward_vqt_memory(model, x, memory, cls, q2, (hw2, hb2), queries_read_memory=reads)
        loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
        loss.backward()
        out.update({f"{prefix}.logits": logits, f"{prefix}.loss": loss.reshape(1), f"{prefix}.grad.memory": memory.grad,
                    f"{prefix}.grad.cls_token": cls.grad, f"{prefix}.grad.queries": q2.grad, f"{prefix}.grad.head.weight": hw2.grad,
                    f"{prefix}.grad.head.bias": hb2.grad})
    safetensors_io.save(os.path.join(OUT, "vqt.safetensors"), out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    kernels()
    vit()
    memory_tokens()
    vqt()
    print("wrote", sorted(os.listdir(OUT)))
