#!/usr/bin/python3
"""PyTorch side of the side-by-side benchmarks (run by `mmt bench`, or by hand).

Prints one JSON object per line so the C# benchmark can read it, e.g.
  /usr/bin/python3 reference/bench_torch.py gemm --threads 2
  /usr/bin/python3 reference/bench_torch.py infer --threads 2 --batch 32 --image-size 224 --model path.safetensors
PyTorch is a reference here, never a runtime dependency of the library.
"""
import argparse, json, resource, sys, time

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))


def peak_rss_mb():
    """Peak resident set since start or the last reset_peak_rss() (VmHWM), MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    """Linux: writing 5 to /proc/self/clear_refs resets VmHWM, so the peak is the timed work's own (as our side does)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def timed(fn, min_seconds, warmup=2):
    """Median seconds of repeated calls, after a warm-up of at least `warmup` calls and 2 seconds (the same rule as ours)."""
    reset_peak_rss()
    start = time.perf_counter()
    i = 0
    while i < warmup or time.perf_counter() - start < 2.0:
        fn()
        i += 1
    times, cpus = [], []
    start = time.perf_counter()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if time.perf_counter() - start >= min_seconds and len(times) >= 3:
            break
    times.sort()
    cpus.sort()
    LAST_CPU[0] = cpus[len(cpus) // 2]   # CPU seconds (user + system, all threads) of a median call: robust on a shared machine
    return times[len(times) // 2]


LAST_CPU = [0.0]


# timm's shapes (patch 16): width, depth, heads; MLP 4x width (the same table as export_onnx.py)
ARCHS = {"vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6), "vit_base": (768, 12, 12)}


def make_model(args):
    """The reference ViT: the checkpoint's weights, or random ones of the --arch shape (the same compute)."""
    from vit_reference import VisionTransformer, load_timm_state_dict
    if args.model:
        return VisionTransformer.from_state_dict(load_timm_state_dict(args.model), img_size=args.image_size)
    d, depth, heads = ARCHS[args.arch]
    return VisionTransformer(img_size=args.image_size, embed_dim=d, depth=depth, num_heads=heads)


def linear_shapes(args):
    """(name, M, N, K) of a block's linear layers at the batch (M = batch x tokens), as y = x @ W^T."""
    d = ARCHS[args.arch][0]
    m = args.batch * ((args.image_size // 16) ** 2 + 1)
    return [("qkv", m, 3 * d, d), ("proj", m, d, d), ("fc1", m, 4 * d, d), ("fc2", m, d, 4 * d)]


def bench_gemm(args):
    for name, m, n, k in linear_shapes(args):
        x = torch.randn(m, k)
        w = torch.randn(n, k)
        out = torch.empty(m, n)
        sec = timed(lambda: torch.mm(x, w.t(), out=out), args.seconds)
        print(json.dumps({"bench": "gemm", "name": name, "m": m, "n": n, "k": k, "seconds": sec,
                          "gflops": 2.0 * m * n * k / sec / 1e9}), flush=True)


def bench_infer(args):
    model = make_model(args)
    model.eval()
    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    with torch.no_grad():
        sec = timed(lambda: model(x), args.seconds)
    print(json.dumps({"bench": "infer", "batch": args.batch, "image_size": args.image_size, "seconds": sec,
                      "images_per_second": args.batch / sec, "cpu_seconds": LAST_CPU[0], "peak_rss_mb": peak_rss_mb()}), flush=True)


def bench_train(args):
    """One training step (forward, CE, backward, AdamW) at batch B: memory tokens (memory + class token + head trainable,
    backbone frozen: no weight gradients), or full fine-tuning (everything trainable)."""
    import torch.nn.functional as F
    model = make_model(args)
    model.train()
    D, L = model.embed_dim, len(model.blocks)
    head = torch.nn.Linear(D, args.classes)
    if args.method == "memory":
        for p in model.parameters():
            p.requires_grad_(False)
        memory = torch.nn.Parameter(torch.randn(L, args.tokens, D) * 0.02)
        model.cls_token.requires_grad_(True)
        params = [memory, model.cls_token, *head.parameters()]
    else:
        memory = None
        params = [p for n, p in model.named_parameters() if not n.startswith("head.")] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    y = torch.randint(0, args.classes, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        feats = model.forward_features(x, memory)
        loss = F.cross_entropy(head(feats[:, 0]), y, label_smoothing=0.1)
        loss.backward()
        opt.step()

    sec = timed(step, args.seconds)
    print(json.dumps({"bench": "train", "method": args.method, "tokens": args.tokens, "batch": args.batch, "image_size": args.image_size,
                      "seconds": sec, "images_per_second": args.batch / sec, "cpu_seconds": LAST_CPU[0], "peak_rss_mb": peak_rss_mb()}), flush=True)


def vqt_query_path(blk, q_tokens, t_normed_kv, B):
    """One layer's VQT query path: queries read keys/values of the original tokens only; output after the whole block."""
    a = blk.attn
    T, D = q_tokens.shape
    k, v = t_normed_kv
    qrow = q_tokens.unsqueeze(0).expand(B, -1, -1)
    qq = torch.nn.functional.linear(blk.norm1(qrow), a.qkv.weight[:D], a.qkv.bias[:D]).reshape(B, T, a.heads, a.head_dim).transpose(1, 2)
    att = ((qq @ k.transpose(-2, -1)) * a.head_dim ** -0.5).softmax(-1)
    z = qrow + a.proj((att @ v).transpose(1, 2).reshape(B, T, D))
    return z + blk.mlp(blk.norm2(z))


def keys_values(blk, t):
    a = blk.attn
    B, N, D = t.shape
    kv = torch.nn.functional.linear(blk.norm1(t), a.qkv.weight[D:], a.qkv.bias[D:]).reshape(B, N, 2, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
    return kv[0], kv[1]


def bench_vqt(args):
    """A VQT training step (T queries per layer + head, AdamW), three ways:
    cached    - block inputs of every layer and the final class token given (computed once, as a cache would hold them);
                per step: LN1 + key/value projection of each layer, the query paths, head, backward through the query paths;
    detached  - the backbone runs under no_grad each step (what a first epoch must do), then the query paths with grad;
    recompute - the backbone runs under autograd each step (the official code's way: the whole stream kept for backward)."""
    import torch.nn.functional as F
    model = make_model(args)
    for p in model.parameters():
        p.requires_grad_(False)
    L, D, T, B = len(model.blocks), model.embed_dim, args.queries, args.batch
    queries = torch.nn.Parameter(torch.empty(L, T, D).uniform_(-0.08, 0.08))
    head = torch.nn.Linear(D * (1 + L * T), args.classes)
    opt = torch.optim.AdamW([queries, *head.parameters()], lr=1e-3, weight_decay=0.0)
    x = torch.randn(B, 3, args.image_size, args.image_size)
    y = torch.randint(0, args.classes, (B,))

    def stream(x):
        t = model.patch_embed.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([model.cls_token.expand(B, -1, -1), t], 1) + model.pos_embed
        inputs = []
        for blk in model.blocks:
            inputs.append(t)
            t = blk(t)
        return inputs, model.norm(t)[:, 0]

    def head_loss(outs, cls):
        feats = torch.cat([F.normalize(cls, dim=1)] + [F.normalize(o.reshape(B, -1), dim=1) for o in outs], 1)
        return F.cross_entropy(head(feats), y, label_smoothing=0.1)

    with torch.no_grad():
        cached_inputs, cached_cls = stream(x)

    def step_cached():
        opt.zero_grad(set_to_none=True)
        outs = [vqt_query_path(blk, queries[i], keys_values(blk, cached_inputs[i]), B) for i, blk in enumerate(model.blocks)]
        head_loss(outs, cached_cls).backward()
        opt.step()

    def step_detached():
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            inputs, cls = stream(x)
            kvs = [keys_values(blk, inputs[i]) for i, blk in enumerate(model.blocks)]
        outs = [vqt_query_path(blk, queries[i], kvs[i], B) for i, blk in enumerate(model.blocks)]
        head_loss(outs, cls).backward()
        opt.step()

    def step_recompute():
        opt.zero_grad(set_to_none=True)
        inputs, cls = stream(x.requires_grad_(False))
        outs = [vqt_query_path(blk, queries[i], keys_values(blk, inputs[i]), B) for i, blk in enumerate(model.blocks)]
        head_loss(outs, cls).backward()
        opt.step()

    fn = {"cached": step_cached, "detached": step_detached, "recompute": step_recompute}[args.mode]
    cache_mb = (sum(t.numel() for t in cached_inputs) + cached_cls.numel()) * 4 / 1e6 if args.mode == "cached" else 0.0
    if args.mode != "cached":
        del cached_inputs, cached_cls
    sec = timed(fn, args.seconds)
    print(json.dumps({"bench": "vqt", "mode": args.mode, "queries": T, "batch": B, "image_size": args.image_size, "seconds": sec,
                      "images_per_second": B / sec, "peak_rss_mb": peak_rss_mb(), "cache_mb": cache_mb}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["gemm", "infer", "train", "vqt"])
    p.add_argument("--mode", choices=["cached", "detached", "recompute"], default="cached")
    p.add_argument("--queries", type=int, default=1)
    p.add_argument("--method", choices=["memory", "full"], default="memory")
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--model", default=None)
    p.add_argument("--arch", choices=sorted(ARCHS), default="vit_tiny", help="random weights of this shape (ignored with --model)")
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    {"gemm": bench_gemm, "infer": bench_infer, "train": bench_train, "vqt": bench_vqt}[args.what](args)


if __name__ == "__main__":
    main()
