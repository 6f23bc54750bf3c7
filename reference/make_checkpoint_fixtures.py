"""Regenerates tests/fixtures/checkpoints/: small checkpoints written by numpy/torch for the C# checkpoint reader.

Run from the repo root with `/usr/bin/python3 reference/make_checkpoint_fixtures.py`. Deterministic: fixed seeds,
safetensors written by hand (no safetensors package needed), zip entries with a fixed timestamp.

Files:
  vit_tiny_timm_{f32,f16,bf16}.safetensors  a random timm-named ViT (D=8, 2 blocks, 2 heads, patch 4, img 8, 5 classes)
  vit_tiny_hf.safetensors                   the same weights in Hugging Face ViTForImageClassification naming (F32)
  vit_tiny_bigvision.npz                    the same weights in big_vision/AugReg layout (numpy.savez, no prefix)
  vit_tiny_bigvision_compressed.npz         the same, numpy.savez_compressed with the 'opt/target/' prefix
  dtypes.safetensors                        one vector in F64/F32/F16/BF16/I64/I32/U8/BOOL + F32 'expected.*' conversions
  npy_variants.npz                          .npy corner cases (dtypes, fortran order, header v2/v3, 0-d, empty)
"""
import json
import os
import struct
import zipfile

import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (the one safetensors writer the reference scripts share)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "checkpoints")

D, DEPTH, HEADS, PATCH, IMG, CLASSES, MLP = 8, 2, 2, 4, 8, 5, 32
N = (IMG // PATCH) ** 2 + 1
HD = D // HEADS
METADATA = {"format": "pt", "fixture": "vit_tiny D=8 depth=2 heads=2 patch=4 img=8 classes=5"}

def f32(a):
    return ("F32", a.shape, np.ascontiguousarray(a, dtype="<f4").tobytes())


def as_f16(a):
    with np.errstate(over="ignore"):  # values past 65504 overflow to inf on purpose (dtypes fixture)
        return np.ascontiguousarray(a).astype("<f2")


def f16(a):
    return ("F16", a.shape, as_f16(a).tobytes())


def bf16(a):
    # torch rounds to nearest even, the behaviour the C# writer must match (NaN payloads aside: torch writes 0xFFFF
    # from its vectorised path, 0x7FC0 from its scalar one; the C# writer uses 0x7FC0).
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    return ("BF16", a.shape, t.view(torch.int16).numpy().astype("<i2").tobytes())


def bf16_as_f32(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).to(torch.float32).numpy()


def tiny_vit():
    rng = np.random.default_rng(20240601)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    sd = {
        "cls_token": r(1, 1, D),
        "pos_embed": r(1, N, D),
        "patch_embed.proj.weight": r(D, 3, PATCH, PATCH),
        "patch_embed.proj.bias": r(D),
    }
    for i in range(DEPTH):
        b = f"blocks.{i}."
        sd.update({
            b + "norm1.weight": r(D), b + "norm1.bias": r(D),
            b + "attn.qkv.weight": r(3 * D, D), b + "attn.qkv.bias": r(3 * D),
            b + "attn.proj.weight": r(D, D), b + "attn.proj.bias": r(D),
            b + "norm2.weight": r(D), b + "norm2.bias": r(D),
            b + "mlp.fc1.weight": r(MLP, D), b + "mlp.fc1.bias": r(MLP),
            b + "mlp.fc2.weight": r(D, MLP), b + "mlp.fc2.bias": r(D),
        })
    sd.update({"norm.weight": r(D), "norm.bias": r(D), "head.weight": r(CLASSES, D), "head.bias": r(CLASSES)})
    return sd


def to_hf(sd):
    """timm -> transformers ViTForImageClassification names; qkv split into query/key/value [D, D] each."""
    p = "vit."
    hf = {
        p + "embeddings.cls_token": sd["cls_token"],
        p + "embeddings.position_embeddings": sd["pos_embed"],
        p + "embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
        p + "embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
    }
    for i in range(DEPTH):
        b, l = f"blocks.{i}.", f"{p}encoder.layer.{i}."
        for j, n in enumerate(("query", "key", "value")):
            hf[l + f"attention.attention.{n}.weight"] = sd[b + "attn.qkv.weight"][j * D:(j + 1) * D]
            hf[l + f"attention.attention.{n}.bias"] = sd[b + "attn.qkv.bias"][j * D:(j + 1) * D]
        for ours, theirs in (("norm1", "layernorm_before"), ("attn.proj", "attention.output.dense"),
                             ("norm2", "layernorm_after"), ("mlp.fc1", "intermediate.dense"),
                             ("mlp.fc2", "output.dense")):
            for wb in ("weight", "bias"):
                hf[l + f"{theirs}.{wb}"] = sd[b + f"{ours}.{wb}"]
    for wb in ("weight", "bias"):
        hf[p + f"layernorm.{wb}"] = sd[f"norm.{wb}"]
        hf[f"classifier.{wb}"] = sd[f"head.{wb}"]
    return hf


def to_big_vision(sd, prefix=""):
    """timm -> big_vision/AugReg .npz layout (JAX/Flax kernels are [in, out]; attention split per head)."""
    bv = {
        "embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),  # [D,3,p,p] -> [p,p,3,D]
        "embedding/bias": sd["patch_embed.proj.bias"],
        "cls": sd["cls_token"],
        "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
        "Transformer/encoder_norm/scale": sd["norm.weight"],
        "Transformer/encoder_norm/bias": sd["norm.bias"],
        "head/kernel": sd["head.weight"].T,  # [C,D] -> [D,C]
        "head/bias": sd["head.bias"],
    }
    for i in range(DEPTH):
        b, e = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        mha = e + "MultiHeadDotProductAttention_1/"
        for j, n in enumerate(("query", "key", "value")):
            w = sd[b + "attn.qkv.weight"][j * D:(j + 1) * D]  # [H*hd, D]
            bv[mha + f"{n}/kernel"] = w.T.reshape(D, HEADS, HD)  # [D, H, hd]
            bv[mha + f"{n}/bias"] = sd[b + "attn.qkv.bias"][j * D:(j + 1) * D].reshape(HEADS, HD)
        bv[mha + "out/kernel"] = sd[b + "attn.proj.weight"].reshape(D, HEADS, HD).transpose(1, 2, 0)  # [H, hd, D]
        bv[mha + "out/bias"] = sd[b + "attn.proj.bias"]
        bv[e + "LayerNorm_0/scale"], bv[e + "LayerNorm_0/bias"] = sd[b + "norm1.weight"], sd[b + "norm1.bias"]
        bv[e + "LayerNorm_2/scale"], bv[e + "LayerNorm_2/bias"] = sd[b + "norm2.weight"], sd[b + "norm2.bias"]
        for r in range(2):
            bv[e + f"MlpBlock_3/Dense_{r}/kernel"] = sd[b + f"mlp.fc{r + 1}.weight"].T
            bv[e + f"MlpBlock_3/Dense_{r}/bias"] = sd[b + f"mlp.fc{r + 1}.bias"]
    return {prefix + k: np.ascontiguousarray(v) for k, v in bv.items()}


def timm_load_big_vision(w, prefix=""):
    """Independent check: timm's _load_weights conversion (vision_transformer.py), restated with torch ops."""
    def n2p(a, t=True):
        if t:
            a = a.transpose({4: [3, 2, 0, 1], 3: [2, 0, 1], 2: [1, 0]}.get(a.ndim, list(range(a.ndim))))
        return torch.from_numpy(np.ascontiguousarray(a))

    sd = {
        "patch_embed.proj.weight": n2p(w[prefix + "embedding/kernel"]),
        "patch_embed.proj.bias": n2p(w[prefix + "embedding/bias"]),
        "cls_token": n2p(w[prefix + "cls"], t=False),
        "pos_embed": n2p(w[prefix + "Transformer/posembed_input/pos_embedding"], t=False),
        "norm.weight": n2p(w[prefix + "Transformer/encoder_norm/scale"]),
        "norm.bias": n2p(w[prefix + "Transformer/encoder_norm/bias"]),
        "head.weight": n2p(w[prefix + "head/kernel"]),
        "head.bias": n2p(w[prefix + "head/bias"]),
    }
    for i in range(DEPTH):
        bp, b = f"{prefix}Transformer/encoderblock_{i}/", f"blocks.{i}."
        mp = bp + "MultiHeadDotProductAttention_1/"
        sd[b + "norm1.weight"], sd[b + "norm1.bias"] = n2p(w[bp + "LayerNorm_0/scale"]), n2p(w[bp + "LayerNorm_0/bias"])
        sd[b + "attn.qkv.weight"] = torch.cat([n2p(w[f"{mp}{n}/kernel"], t=False).flatten(1).T for n in ("query", "key", "value")])
        sd[b + "attn.qkv.bias"] = torch.cat([n2p(w[f"{mp}{n}/bias"], t=False).reshape(-1) for n in ("query", "key", "value")])
        sd[b + "attn.proj.weight"] = n2p(w[mp + "out/kernel"]).flatten(1)
        sd[b + "attn.proj.bias"] = n2p(w[mp + "out/bias"])
        for r in range(2):
            sd[b + f"mlp.fc{r + 1}.weight"] = n2p(w[f"{bp}MlpBlock_3/Dense_{r}/kernel"])
            sd[b + f"mlp.fc{r + 1}.bias"] = n2p(w[f"{bp}MlpBlock_3/Dense_{r}/bias"])
        sd[b + "norm2.weight"], sd[b + "norm2.bias"] = n2p(w[bp + "LayerNorm_2/scale"]), n2p(w[bp + "LayerNorm_2/bias"])
    return sd


def write_npz(path, entries):
    """entries: name -> (array, npy header version or None, zip compression). Writes each '<name>.npy' the way
    numpy.savez / savez_compressed do (zipfile, force_zip64, format.write_array), but with a fixed timestamp so
    the bytes do not depend on when this ran."""
    with zipfile.ZipFile(path, "w") as z:
        for name, (a, version, compression) in entries.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), version=version)


def save_npz(path, arrays, compressed):
    comp = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    write_npz(path, {k: (v, None, comp) for k, v in arrays.items()})


def dtype_vector():
    bits = lambda *u: np.array(u, dtype=np.uint32).view(np.float32)
    base = np.array([0.0, -0.0, 1.0, -2.5, 0.1, 3.14159265, 65504.0, 65520.0, 1e-8, 6e-5, 1e30,
                     np.inf, -np.inf, np.nan], dtype=np.float32)
    # Rounding ties: bf16 halfway cases (low 16 bits 0x8000), f16 halfway cases (1 + 2^-11, 1 + 3*2^-11).
    ties = np.concatenate([bits(0x3F808000, 0x3F818000, 0xBF808000),
                           np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049.0, 2051.0], dtype=np.float32)])
    return np.concatenate([base, ties]).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = tiny_vit()
    safetensors_io.write_raw(os.path.join(OUT, "vit_tiny_timm_f32.safetensors"), {k: f32(v) for k, v in sd.items()}, METADATA)
    safetensors_io.write_raw(os.path.join(OUT, "vit_tiny_timm_f16.safetensors"), {k: f16(v) for k, v in sd.items()}, METADATA)
    safetensors_io.write_raw(os.path.join(OUT, "vit_tiny_timm_bf16.safetensors"), {k: bf16(v) for k, v in sd.items()}, METADATA)
    safetensors_io.write_raw(os.path.join(OUT, "vit_tiny_hf.safetensors"), {k: f32(v) for k, v in to_hf(sd).items()})

    for name, prefix, compressed in (("vit_tiny_bigvision.npz", "", False),
                                     ("vit_tiny_bigvision_compressed.npz", "opt/target/", True)):
        bv = to_big_vision(sd, prefix)
        back = timm_load_big_vision(bv, prefix)
        assert set(back) == set(sd) and all(np.array_equal(back[k].numpy(), sd[k]) for k in sd), name
        save_npz(os.path.join(OUT, name), bv, compressed)
        with np.load(os.path.join(OUT, name)) as z:  # numpy reads it back as written
            assert all(np.array_equal(z[k], bv[k]) for k in bv), name

    x = dtype_vector()
    ints = np.array([-3, 0, 7, 255, 16777217, 2 ** 40 + 1, -(2 ** 40) - 1], dtype=np.int64)
    small = np.array([0, 1, 127, 255], dtype=np.uint8)
    flags = np.array([True, False, True])
    safetensors_io.write_raw(os.path.join(OUT, "dtypes.safetensors"), {
        "x.f64": ("F64", x.shape, x.astype("<f8").tobytes()),
        "x.f32": f32(x),
        "x.f16": f16(x),
        "x.bf16": bf16(x),
        "x.i64": ("I64", ints.shape, ints.astype("<i8").tobytes()),
        "x.i32": ("I32", (4,), ints[:4].astype("<i4").tobytes()),
        "x.u8": ("U8", small.shape, small.tobytes()),
        "x.bool": ("BOOL", flags.shape, flags.astype(np.uint8).tobytes()),
        "scalar": f32(np.array(2.5, dtype=np.float32)),
        "empty": f32(np.zeros((0, 3), dtype=np.float32)),
        "expected.f16": f32(as_f16(x).astype(np.float32)),
        "expected.bf16": f32(bf16_as_f32(x)),
        "expected.i64": f32(ints.astype(np.float32)),
    }, {"purpose": "dtype conversions"})

    rng = np.random.default_rng(7)
    f8 = rng.standard_normal((2, 3))
    fortran = np.asfortranarray(rng.standard_normal((2, 3, 4)).astype(np.float32))
    fortran64 = np.asfortranarray(rng.standard_normal((3, 2)))
    v = rng.standard_normal((5,)).astype(np.float32)
    arrays = {
        "f8": (f8, None), "f8__expected": (f8.astype(np.float32), None),
        "f2": (np.array([1.0, -0.5, 65504.0, 6e-5], dtype=np.float16), None),
        "i4": (np.array([-1, 0, 123456], dtype=np.int32), None),
        "i8": (np.array([-(2 ** 40) - 1, 5], dtype=np.int64), None),
        "fortran": (fortran, None), "fortran__expected": (np.ascontiguousarray(fortran), None),
        "fortran64": (fortran64, None), "fortran64__expected": (np.ascontiguousarray(fortran64).astype(np.float32), None),
        "scalar": (np.array(1.5, dtype=np.float32), None),
        "empty": (np.zeros((0, 3), dtype=np.float32), None),
        "v2": (v, (2, 0)), "v3": (v, (3, 0)),
    }
    # Alternate stored and deflated entries so both zip methods are read.
    write_npz(os.path.join(OUT, "npy_variants.npz"),
              {k: (a, version, zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED)
               for i, (k, (a, version)) in enumerate(arrays.items())})

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} fixtures to {os.path.normpath(OUT)} ({total} bytes)")


if __name__ == "__main__":
    main()
