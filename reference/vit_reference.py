"""A plain-PyTorch timm VisionTransformer (same parameter names as timm), the reference our C# engine is checked against.

No timm import: Debian ships torch but not timm. The blocks follow timm's vision_transformer.py exactly:
pre-norm, qkv in one Linear (q | k | v, heads contiguous), exact-erf GELU, class token pooled after the final norm —
and the options the families differ in, as timm spells them: class_token, reg_tokens, no_embed_class, a distillation token
(deit.py's VisionTransformerDistilled), pre_norm (norm_pre; CLIP, which also drops the patch bias), qkv_bias, init_values
(LayerScale ls1/ls2.gamma), act_layer='quick_gelu', global_pool='avg' with fc_norm (or norm first with fc_norm=False).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_io


def quick_gelu(x):
    """timm's quick_gelu (OpenAI CLIP's activation)."""
    return x * torch.sigmoid(1.702 * x)


class LayerScale(nn.Module):
    """timm's LayerScale: x * gamma (per channel)."""
    def __init__(self, dim, init_values):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
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
    def __init__(self, dim, hidden, act="gelu"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = quick_gelu if act == "quick_gelu" else F.gelu

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp, eps, qkv_bias=True, init_values=None, act="gelu"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp, act)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x, memory=None):
        """memory [M, D] (raw, before norm1): concatenated to the input, used as keys/values only, dropped after attention."""
        extra = None
        if memory is not None:
            extra = self.norm1(memory).unsqueeze(0).expand(x.shape[0], -1, -1)
        a, _ = self.attn(self.norm1(x), extra)
        x = x + self.ls1(a)
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=192, depth=12, num_heads=3,
                 mlp_ratio=4.0, eps=1e-6, class_token=True, reg_tokens=0, no_embed_class=False, distilled=False,
                 pre_norm=False, qkv_bias=True, init_values=None, act="gelu", global_pool="token", fc_norm=None):
        super().__init__()
        self.patch_size, self.embed_dim = patch_size, embed_dim
        self.grid = img_size // patch_size
        self.num_prefix_tokens = int(class_token) + int(distilled) + reg_tokens
        self.no_embed_class, self.distilled = no_embed_class, distilled
        self.global_pool = global_pool
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size, bias=not pre_norm)  # CLIP: no bias
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        if distilled:
            self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if reg_tokens:
            self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim))
        embed_len = self.grid ** 2 + (0 if no_embed_class else self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, embed_dim) * 0.02)
        self.norm_pre = nn.LayerNorm(embed_dim, eps=eps) if pre_norm else nn.Identity()
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, int(embed_dim * mlp_ratio), eps, qkv_bias, init_values, act) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=eps) if not use_fc_norm else nn.Identity()
        self.fc_norm = nn.LayerNorm(embed_dim, eps=eps) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if distilled:
            self.head_dist = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def from_state_dict(sd, img_size=None, num_heads=None, eps=None, act="gelu"):
        """A model for a timm-named state dict; the family read off the keys as the C# loader does (prefix tokens, LayerScale,
        norm_pre, qkv bias, fc_norm or no class token: average pooling; the position embedding with or without prefix rows)."""
        d = sd["patch_embed.proj.weight"].shape[0]
        p = sd["patch_embed.proj.weight"].shape[2]
        class_token, distilled = "cls_token" in sd, "dist_token" in sd
        reg = sd["reg_token"].shape[1] if "reg_token" in sd else 0
        prefix = int(class_token) + int(distilled) + reg
        n = sd["pos_embed"].shape[1]
        grid = int(round(math.sqrt(n - prefix))) if n > prefix else 0
        no_embed_class = grid * grid != n - prefix
        if no_embed_class:
            grid = int(round(math.sqrt(n)))
        depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
        classes = sd["head.weight"].shape[0] if "head.weight" in sd else 0
        mlp = sd["blocks.0.mlp.fc1.weight"].shape[0]
        pre_norm = "norm_pre.weight" in sd
        avg = "fc_norm.weight" in sd or not class_token
        size = img_size or grid * p
        m = VisionTransformer(size, p, sd["patch_embed.proj.weight"].shape[1], classes, d, depth, num_heads or max(1, d // 64), mlp / d,
                              eps if eps is not None else (1e-5 if pre_norm else 1e-6), class_token, reg, no_embed_class, distilled,
                              pre_norm, "blocks.0.attn.qkv.bias" in sd, 1.0 if "blocks.0.ls1.gamma" in sd else None, act,
                              "avg" if avg else "token", "fc_norm.weight" in sd if avg else None)
        sd = {k: torch.as_tensor(v) for k, v in sd.items()}
        if size != grid * p:
            sd["pos_embed"] = resample_abs_pos_embed(sd["pos_embed"], (size // p, size // p), 0 if no_embed_class else prefix)
        m.load_state_dict(sd, strict=True)
        return m

    def readout_norm(self):
        """The norm a pooled vector (or a masked task's row) goes through: fc_norm after average pooling, else norm."""
        return self.fc_norm if isinstance(self.norm, nn.Identity) else self.norm

    def prefix_tokens(self, B, cls=None):
        """[B, prefix, D]: the class token (or `cls`), the distillation token, the registers, as timm orders them."""
        to_cat = []
        if self.cls_token is not None:
            to_cat.append((self.cls_token if cls is None else cls).expand(B, -1, -1))
        if self.distilled:
            to_cat.append(self.dist_token.expand(B, -1, -1))
        if hasattr(self, "reg_token"):
            to_cat.append(self.reg_token.expand(B, -1, -1))
        return to_cat

    def embed(self, x, cls=None):
        """timm's patch_embed + _pos_embed (prefix tokens get positions unless no_embed_class), without norm_pre."""
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        to_cat = self.prefix_tokens(x.shape[0], cls)
        if self.no_embed_class:
            x = x + self.pos_embed
            return torch.cat(to_cat + [x], 1) if to_cat else x
        return torch.cat(to_cat + [x], 1) + self.pos_embed

    def forward_features(self, x, memory=None):
        x = self.norm_pre(self.embed(x))
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if memory is None else memory[i])
        return self.norm(x)

    def pool(self, x):
        """timm's forward_head(pre_logits=True) on final-norm features: the class token; a distilled model's class and
        distillation tokens averaged; or the patch tokens averaged (prefix excluded), then fc_norm."""
        if self.distilled:
            return (x[:, 0] + x[:, 1]) / 2
        if self.global_pool == "avg":
            return self.fc_norm(x[:, self.num_prefix_tokens:].mean(dim=1))
        return x[:, 0]

    def forward_head(self, x, pre_logits=False):
        if self.distilled and not pre_logits:
            return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2
        if self.distilled or self.global_pool == "avg":
            x = self.pool(x)
            return x if pre_logits else self.head(x)
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
    cls [1, 1, D] the task's class token (plain: replaces the backbone's; masked: an extra stream row, with the class token's
    position when that has one, through norm_pre as the other rows);
    masked: original rows attend only to original rows, the task row to all stream rows and the memory.
    head (W [C, D], b [C]) applied to the pooled stream (plain: the backbone's pooling) or to the task row after the readout
    norm (masked). Returns logits."""
    B = x.shape[0]
    t = model.embed(x, None if (cls is None or masked) else cls)
    N = t.shape[1]
    if masked:
        task = cls + model.pos_embed[:, :1] if model.cls_token is not None and not model.no_embed_class else cls
        t = torch.cat([t, task.expand(B, -1, -1)], 1)
    t = model.norm_pre(t)
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
        t = t + blk.ls1(a.proj(out))
        t = t + blk.ls2(blk.mlp(blk.norm2(t)))
    pooled = model.readout_norm()(t[:, N]) if masked else model.pool(model.norm(t[:, :N]))
    w, b = head
    return pooled @ w.t() + b


def query_path(blk, t, q_tokens, normed=None, memory=None):
    """A VQT query row through block `blk`, reading keys/values of the stream t [B, N, D] (normed: norm1(t), when the
    caller has it) and, given memory [m, D], of the memory rows after them, normed by norm1 and projected as the stream's
    rows: z = q + ls1(proj(attn)); out = z + ls2(mlp(norm2(z)))."""
    B, N, D = t.shape
    a = blk.attn
    T = q_tokens.shape[0]
    rows = blk.norm1(t) if normed is None else normed
    if memory is not None:
        rows = torch.cat([rows, blk.norm1(memory).unsqueeze(0).expand(B, -1, -1)], 1)
    kv = a.qkv(rows).reshape(B, rows.shape[1], 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
    qrow = q_tokens.unsqueeze(0).expand(B, -1, -1)
    qq = a.qkv(blk.norm1(qrow)).reshape(B, T, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)[0]
    att = ((qq @ kv[1].transpose(-2, -1)) * a.head_dim ** -0.5).softmax(-1)
    z = qrow + blk.ls1(a.proj((att @ kv[2]).transpose(1, 2).reshape(B, T, D)))
    return z + blk.ls2(blk.mlp(blk.norm2(z)))


def forward_vqt(model, x, queries, head):
    """Visual Query Tuning (Tu et al. 2023). queries [L, T, D]: at layer l each query row goes through block l reading keys and
    values of the original tokens only (z = q + proj(attn(norm1(q), K, V)); out = z + mlp(norm2(z))); the stream itself is
    untouched. Head input: normalize(pooled output: the final-norm class token, or the backbone's pooling) |
    normalize(flatten(out_l)) for each layer l. Returns logits."""
    B = x.shape[0]
    t = model.norm_pre(model.embed(x))
    outs = []
    for blk, q_tokens in zip(model.blocks, queries):
        outs.append(query_path(blk, t, q_tokens))
        t = blk(t)
    cls = model.pool(model.norm(t))
    feats = torch.cat([F.normalize(cls, dim=1)] + [F.normalize(o.reshape(B, -1), dim=1) for o in outs], 1)
    w, b = head
    return feats @ w.t() + b


def forward_vqt_memory(model, x, memory, cls, queries, head, queries_read_memory=True):
    """VQT composed with memory tokens: the stream runs with memory (plain variant, trainable class token); at each layer the
    query tokens read keys/values of every row of the layer's input except the queries themselves, as VQT's official code
    composes with prompts (its queries attend to hidden_states[:, query_prompt_len:]): the N memory-adapted tokens and the
    m memory tokens, normed by norm1 and projected as the original rows see them. queries_read_memory=False: the N tokens
    only (the composition before adapters recorded the choice). The head reads the VQT features."""
    B = x.shape[0]
    t = model.norm_pre(model.embed(x, cls))
    N, m = t.shape[1], memory.shape[1]
    outs = []
    for i, blk in enumerate(model.blocks):
        a = blk.attn
        D = t.shape[2]
        normed = blk.norm1(t)
        outs.append(query_path(blk, t, queries[i], normed, memory[i] if queries_read_memory else None))
        rows = torch.cat([normed, blk.norm1(memory[i]).unsqueeze(0).expand(B, -1, -1)], 1)
        qkv = a.qkv(rows).reshape(B, N + m, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        s = ((qkv[0][:, :, :N] @ qkv[1].transpose(-2, -1)) * a.head_dim ** -0.5).softmax(-1)
        t = t + blk.ls1(a.proj((s @ qkv[2]).transpose(1, 2).reshape(B, N, D)))
        t = t + blk.ls2(blk.mlp(blk.norm2(t)))
    c = model.pool(model.norm(t))
    feats = torch.cat([F.normalize(c, dim=1)] + [F.normalize(o.reshape(B, -1), dim=1) for o in outs], 1)
    w, b = head
    return feats @ w.t() + b
