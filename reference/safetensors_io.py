"""Minimal safetensors reader/writer (the format is a u64 header length, a JSON header, then raw little-endian data).
Used by the reference scripts so they need nothing beyond Debian's python3-torch and python3-numpy."""
import json, struct

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "U8": 1, "BOOL": 1}


def write_raw(path, tensors, metadata=None):
    """tensors: name -> (dtype, shape, raw little-endian bytes). Laid out like the Hugging Face writer: larger dtypes first
    (alignment), then by name; compact JSON with __metadata__ first; header padded with spaces to a multiple of 8."""
    order = sorted(tensors, key=lambda k: (-SIZES[tensors[k][0]], k))
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    for name in order:
        dtype, shape, raw = tensors[name]
        assert len(raw) == SIZES[dtype] * int(np.prod(shape, dtype=np.int64)), name
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def save(path, tensors, metadata=None):
    """tensors: name -> numpy array or torch tensor, written as F32 (float16 arrays as F16)."""
    raw = {}
    for name, a in tensors.items():
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        if a.dtype == np.float16:
            raw[name] = ("F16", a.shape, a.astype("<f2").tobytes())
        else:
            raw[name] = ("F32", a.shape, a.astype("<f4").tobytes())
    write_raw(path, raw, metadata)


def load(path):
    """Returns (dict name -> numpy float32 array, metadata)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        meta = header.pop("__metadata__", {})
        out = {}
        for name, info in header.items():
            b, e = info["data_offsets"]
            f.seek(base + b)
            raw = f.read(e - b)
            if info["dtype"] == "BF16":
                u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                a = u.view(np.float32)
            else:
                a = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).astype(np.float32)
            out[name] = a.reshape(info["shape"]).copy()
        return out, meta
