"""Minimal safetensors reader/writer (the format is a u64 header length, a JSON header, then raw little-endian data).
Used by the reference scripts so they need nothing beyond Debian's python3-torch and python3-numpy."""
import json, struct

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array or torch tensor (written as F32 unless already float16)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        if a.dtype not in (np.float16,):
            a = a.astype(np.float32)
        dtype = "F16" if a.dtype == np.float16 else "F32"
        data = a.astype("<" + a.dtype.str[1:]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


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
