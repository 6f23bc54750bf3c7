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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, min_seconds, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start >= min_seconds and len(times) >= 3:
            break
    times.sort()
    return times[len(times) // 2]


# (name, M, N, K): ViT-Ti/16 linear layers at batch 32 (M = 32*197 tokens), as y = x @ W^T.
VIT_TI_GEMMS = [("qkv", 6304, 576, 192), ("proj", 6304, 192, 192), ("fc1", 6304, 768, 192), ("fc2", 6304, 192, 768)]


def bench_gemm(args):
    for name, m, n, k in VIT_TI_GEMMS:
        x = torch.randn(m, k)
        w = torch.randn(n, k)
        out = torch.empty(m, n)
        sec = timed(lambda: torch.mm(x, w.t(), out=out), args.seconds)
        print(json.dumps({"bench": "gemm", "name": name, "m": m, "n": n, "k": k, "seconds": sec,
                          "gflops": 2.0 * m * n * k / sec / 1e9}), flush=True)


def bench_infer(args):
    from vit_reference import VisionTransformer, load_timm_state_dict
    model = VisionTransformer.from_state_dict(load_timm_state_dict(args.model), img_size=args.image_size) if args.model \
        else VisionTransformer(img_size=args.image_size)
    model.eval()
    x = torch.randn(args.batch, 3, args.image_size, args.image_size)
    with torch.no_grad():
        sec = timed(lambda: model(x), args.seconds)
    print(json.dumps({"bench": "infer", "batch": args.batch, "image_size": args.image_size, "seconds": sec,
                      "images_per_second": args.batch / sec, "peak_rss_mb": peak_rss_mb()}), flush=True)


def bench_train(args):
    """One training step (forward, CE, backward, AdamW) at batch B: memory tokens (memory + class token + head trainable,
    backbone frozen: no weight gradients), or full fine-tuning (everything trainable)."""
    import torch.nn.functional as F
    from vit_reference import VisionTransformer, load_timm_state_dict
    model = VisionTransformer.from_state_dict(load_timm_state_dict(args.model), img_size=args.image_size) if args.model \
        else VisionTransformer(img_size=args.image_size)
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
                      "seconds": sec, "images_per_second": args.batch / sec, "peak_rss_mb": peak_rss_mb()}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["gemm", "infer", "train"])
    p.add_argument("--method", choices=["memory", "full"], default="memory")
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--model", default=None)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    {"gemm": bench_gemm, "infer": bench_infer, "train": bench_train}[args.what](args)


if __name__ == "__main__":
    main()
