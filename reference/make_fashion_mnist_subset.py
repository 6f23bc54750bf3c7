#!/usr/bin/env python3
"""Regenerate samples/data/fashion-mnist-2k/ from the full Fashion-MNIST set.

    /usr/bin/python3 reference/make_fashion_mnist_subset.py [SOURCE_DIR]

SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (Debian: `apt-get install dataset-fashion-mnist`) and must
hold the four standard IDX files, gzipped or not. The subset is the FIRST 2,000 training images and the FIRST 1,000
test images, unchanged and in the original order, with their labels. Standard library only.

Output is byte-for-byte reproducible: the IDX headers are rewritten with the new counts, the gzip header carries
no file name and mtime 0, and zlib runs at level 9 (the deflate stream can differ only with a different zlib).
"""
import gzip
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "samples", "data", "fashion-mnist-2k"))
DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"

SPLITS = [("train", 2000), ("t10k", 1000)]
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_source(folder, name):
    """The decompressed bytes of `name` or `name.gz` in `folder`."""
    for candidate, opener in ((name + ".gz", gzip.open), (name, open)):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            with opener(path, "rb") as f:
                return f.read()
    sys.exit(f"missing {name}[.gz] in {folder}")


def take(data, name, magic, count):
    """The first `count` items of an IDX ubyte file, with the header's count rewritten; checks the source header."""
    got_magic, n = struct.unpack_from(">II", data, 0)
    if got_magic != magic:
        sys.exit(f"{name}: magic {got_magic:#010x}, expected {magic:#010x}")
    dims = magic & 0xFF
    shape = struct.unpack_from(">" + "I" * dims, data, 4)
    header = 4 + 4 * dims
    item = 1
    for d in shape[1:]:
        item *= d
    if len(data) != header + n * item:
        sys.exit(f"{name}: {len(data)} bytes, expected {header + n * item}")
    if count > n:
        sys.exit(f"{name}: asked for {count} items, the file has {n}")
    return struct.pack(">II", magic, count) + data[8:header] + data[header:header + count * item]


def write_gz(path, payload):
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(payload)


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SOURCE
    os.makedirs(OUT, exist_ok=True)
    for split, count in SPLITS:
        labels = None
        for kind, magic in (("images-idx3", 0x00000803), ("labels-idx1", 0x00000801)):
            name = f"{split}-{kind}-ubyte"
            payload = take(read_source(source, name), name, magic, count)
            if kind.startswith("labels"):
                labels = payload[8:]
            write_gz(os.path.join(OUT, name + ".gz"), payload)
        histogram = [labels.count(c) for c in range(len(CLASSES))]
        print(f"{split}: {count} images, per-class counts {histogram}")
    with open(os.path.join(OUT, "classes.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(c + "\n" for c in CLASSES))
    written = [f"{split}-{kind}-ubyte.gz" for split, _ in SPLITS for kind in ("images-idx3", "labels-idx1")]
    for name in written + ["classes.txt"]:
        path = os.path.join(OUT, name)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        print(f"{digest}  {name}  ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
