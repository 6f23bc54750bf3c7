"""A plain-PyTorch timm VisionTransformer (same parameter names as timm), the reference our C# engine is checked against.

No timm import: Debian ships torch but not timm. The blocks follow timm's vision_transformer.py exactly:
pre-norm, qkv in one Linear (q | k | v, heads contiguous), exact-erf GELU, class token pooled after the final norm.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_io


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, extra_kv=None, queries=None):
        """x [B, N, D] (already normed). extra_kv [B, M, D] normed tokens that are keys/values only (memory);
        queries [B, T, D] normed tokens that only read x (VQT). Returns (out for x rows, out for query rows)."""
        B, N, D = x.shape
        rows = x if extra_kv is None else torch.cat([x, extra_kv], 1)
        qkv = self.qkv(rows).reshape(B, rows.shape[1], 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                    # [B, H, S, d]
        attn = (q[:, :, :N] @ k.transpose(-2, -1)) * self.head_dim ** -0.5
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D)
        qout = None
        if queries is not None:
            kq = k[:, :, :N]
            vq = v[:, :, :N]
            qq = self.qkv(queries).reshape(B, queries.shape[1], 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)[0]
            a = (qq @ kq.transpose(-2, -1)) * self.head_dim ** -0.5
            qout = self.proj((a.softmax(-1) @ vq).transpose(1, 2).reshape(B, queries.shape[1], D))
        return self.proj(out), qout


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x, memory=None):
        """memory [M, D] (raw, before norm1): concatenated to the input, used as keys/values only, dropped after attention."""
        extra = None
        if memory is not None:
            extra = self.norm1(memory).unsqueeze(0).expand(x.shape[0], -1, -1)
        a, _ = self.attn(self.norm1(x), extra)
        x = x + a
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=192, depth=12, num_heads=3,
                 mlp_ratio=4.0, eps=1e-6):
        super().__init__()
        self.patch_size, self.embed_dim = patch_size, embed_dim
        self.grid = img_size // patch_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + self.grid ** 2, embed_dim) * 0.02)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, int(embed_dim * mlp_ratio), eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def from_state_dict(sd, img_size=None, num_heads=None, eps=1e-6):
        d = sd["patch_embed.proj.weight"].shape[0]
        p = sd["patch_embed.proj.weight"].shape[2]
        grid = int(round(math.sqrt(sd["pos_embed"].shape[1] - 1)))
        depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
        classes = sd["head.weight"].shape[0] if "head.weight" in sd else 0
        mlp = sd["blocks.0.mlp.fc1.weight"].shape[0]
        size = img_size or grid * p
        m = VisionTransformer(size, p, sd["patch_embed.proj.weight"].shape[1], classes, d, depth, num_heads or max(1, d // 64), mlp / d, eps)
        sd = {k: torch.as_tensor(v) for k, v in sd.items()}
        if size != grid * p:
            sd["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], (size // p, size // p))
        m.load_state_dict(sd, strict=True)
        return m

    def forward_features(self, x, memory=None):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if memory is None else memory[i])
        return self.norm(x)

    def forward_head(self, x, pre_logits=False):
        x = x[:, 0]
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def resample_abs_pos_embed(pos, new_grid, prefix=1):
    """timm's resample_abs_pos_embed: split off prefix tokens, bicubic + antialias in float32, put them back."""
    n = pos.shape[1] - prefix
    old = int(round(math.sqrt(n)))
    grid = pos[:, prefix:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=new_grid, mode="bicubic", antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[2])
    return torch.cat([pos[:, :prefix], grid], 1)


def load_timm_state_dict(path):
    tensors, _ = safetensors_io.load(path)
    return {k: torch.from_numpy(v) for k, v in tensors.items()}


def forward_adapted(model, x, memory=None, cls=None, masked=False, head=None):
    """Memory-token forward (Sandler et al. 2022), written with an explicit attention mask as the paper describes it.

    memory [L, m, D] raw memory (normed by each layer's norm1, keys/values only, dropped after attention);
    cls [1, 1, D] the task's class token (plain: replaces the backbone's; masked: an extra stream row);
    masked: original rows attend only to original rows, the task row to all stream rows and the memory.
    head (W [C, D], b [C]) applied to the final-norm task row. Returns logits."""
    B = x.shape[0]
    t = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    base_cls = model.cls_token if (cls is None or masked) else cls
    t = torch.cat([base_cls.expand(B, -1, -1), t], 1) + model.pos_embed
    N = t.shape[1]
    if masked:
        t = torch.cat([t, (cls + model.pos_embed[:, :1]).expand(B, -1, -1)], 1)
    S = t.shape[1]
    m = 0 if memory is None else memory.shape[1]
    allowed = torch.ones(S, S + m, dtype=torch.bool)
    if masked:
        allowed[:N, N:] = False  # original rows never see task tokens
    for i, blk in enumerate(model.blocks):
        a = blk.attn
        rows = blk.norm1(t)
        if m:
            rows = torch.cat([rows, blk.norm1(memory[i]).unsqueeze(0).expand(B, -1, -1)], 1)
        qkv = a.qkv(rows).reshape(B, S + m, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0][:, :, :S], qkv[1], qkv[2]
        scores = (q @ k.transpose(-2, -1)) * a.head_dim ** -0.5
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, S, -1)
        t = t + a.proj(out)
        t = t + blk.mlp(blk.norm2(t))
    pooled = model.norm(t[:, N if masked else 0])
    w, b = head
    return pooled @ w.t() + b


def forward_vqt(model, x, queries, head):
    """Visual Query Tuning (Tu et al. 2023). queries [L, T, D]: at layer l each query row goes through block l reading keys and
    values of the original tokens only (z = q + proj(attn(norm1(q), K, V)); out = z + mlp(norm2(z))); the stream itself is
    untouched. Head input: normalize(final-norm class token) | normalize(flatten(out_l)) for each layer l. Returns logits."""
    B = x.shape[0]
    t = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    t = torch.cat([model.cls_token.expand(B, -1, -1), t], 1) + model.pos_embed
    outs = []
    for blk, q_tokens in zip(model.blocks, queries):
        a = blk.attn
        D = t.shape[2]
        T = q_tokens.shape[0]
        kv = a.qkv(blk.norm1(t)).reshape(B, t.shape[1], 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv[1], kv[2]
        qrow = q_tokens.unsqueeze(0).expand(B, -1, -1)
        qq = a.qkv(blk.norm1(qrow)).reshape(B, T, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)[0]
        att = ((qq @ k.transpose(-2, -1)) * a.head_dim ** -0.5).softmax(-1)
        z = qrow + a.proj((att @ v).transpose(1, 2).reshape(B, T, D))
        outs.append(z + blk.mlp(blk.norm2(z)))
        t = blk(t)
    cls = model.norm(t)[:, 0]
    feats = torch.cat([F.normalize(cls, dim=1)] + [F.normalize(o.reshape(B, -1), dim=1) for o in outs], 1)
    w, b = head
    return feats @ w.t() + b


def forward_vqt_memory(model, x, memory, cls, queries, head):
    """VQT composed with memory tokens: the stream runs with memory (plain variant, trainable class token); at each layer the
    query tokens read keys/values of the N memory-adapted tokens (not the memory); the head reads the VQT features."""
    B = x.shape[0]
    t = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
    t = torch.cat([cls.expand(B, -1, -1), t], 1) + model.pos_embed
    N, m = t.shape[1], memory.shape[1]
    outs = []
    for i, blk in enumerate(model.blocks):
        a = blk.attn
        D, T = t.shape[2], queries.shape[1]
        normed = blk.norm1(t)
        kv = a.qkv(normed).reshape(B, N, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        qrow = queries[i].unsqueeze(0).expand(B, -1, -1)
        qq = a.qkv(blk.norm1(qrow)).reshape(B, T, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)[0]
        att = ((qq @ kv[1].transpose(-2, -1)) * a.head_dim ** -0.5).softmax(-1)
        z = qrow + a.proj((att @ kv[2]).transpose(1, 2).reshape(B, T, D))
        outs.append(z + blk.mlp(blk.norm2(z)))
        rows = torch.cat([normed, blk.norm1(memory[i]).unsqueeze(0).expand(B, -1, -1)], 1)
        qkv = a.qkv(rows).reshape(B, N + m, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        s = ((qkv[0][:, :, :N] @ qkv[1].transpose(-2, -1)) * a.head_dim ** -0.5).softmax(-1)
        t = t + a.proj((s @ qkv[2]).transpose(1, 2).reshape(B, N, D))
        t = t + blk.mlp(blk.norm2(t))
    c = model.norm(t)[:, 0]
    feats = torch.cat([F.normalize(c, dim=1)] + [F.normalize(o.reshape(B, -1), dim=1) for o in outs], 1)
    w, b = head
    return feats @ w.t() + b
