#!/usr/bin/env python3
"""Regenerate tests/fixtures/data/ for the dataset tests (standard library only):

    /usr/bin/python3 reference/make_data_fixtures.py

  idx/     tiny IDX files in the MNIST layout: a raw train split (3 images of 2x3) and a gzipped t10k split
           (2 images of 2x3), with a classes.txt. Pixel (x, y) of train image i is 100*i + 10*y + x; of test image i
           it is 255 minus that. Train labels 2, 0, 1; test labels 1, 2.
  folder/  one subfolder per class (ant, bird, cat), images in PNG, BMP, PPM and PGM, one nested in a subfolder, plus
           files a dataset must skip: a text file, a macOS "._" resource fork and a hidden ".cache" folder.
           The first pixel of each image tells them apart: ant/x.PNG (1,2,3), bird/a.bmp (4,5,6), bird/b.pgm (7,7,7),
           cat/1.png (8,9,10), cat/sub/2.ppm (11,12,13).
  csv/     labels.csv with a header, a path relative to the CSV's folder that leaves it, and quoted fields, one of
           which holds a comma.
Everything is written deterministically (gzip with mtime 0 and no file name).
"""
import gzip
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures", "data"))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_gz(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(data)


def idx_images(count, height, width, pixel):
    body = bytes(pixel(i, y, x) for i in range(count) for y in range(height) for x in range(width))
    return struct.pack(">IIII", 0x00000803, count, height, width) + body


def idx_labels(labels):
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


def png(width, height, rgb):
    """An 8-bit RGB PNG of the row-major (r, g, b) tuples in `rgb`."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    rows = b"".join(b"\0" + bytes(c for px in rgb[y * width:(y + 1) * width] for c in px) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def bmp(width, height, rgb):
    """A 24-bit bottom-up BMP (BITMAPINFOHEADER) of the row-major (r, g, b) tuples in `rgb`."""
    stride = (width * 3 + 3) & ~3
    rows = b""
    for y in reversed(range(height)):
        row = b"".join(bytes((b, g, r)) for r, g, b in rgb[y * width:(y + 1) * width])
        rows += row + b"\0" * (stride - len(row))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(rows), 0, 0, 14 + 40) + info + rows


def ppm(width, height, rgb):
    return f"P6\n{width} {height}\n255\n".encode() + bytes(c for px in rgb for c in px)


def pgm(width, height, gray):
    return f"P5\n{width} {height}\n255\n".encode() + bytes(gray)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    idx = os.path.join(OUT, "idx")
    write(os.path.join(idx, "train-images-idx3-ubyte"), idx_images(3, 2, 3, lambda i, y, x: 100 * i + 10 * y + x))
    write(os.path.join(idx, "train-labels-idx1-ubyte"), idx_labels([2, 0, 1]))
    write_gz(os.path.join(idx, "t10k-images-idx3-ubyte.gz"),
             idx_images(2, 2, 3, lambda i, y, x: 255 - (100 * i + 10 * y + x)))
    write_gz(os.path.join(idx, "t10k-labels-idx1-ubyte.gz"), idx_labels([1, 2]))
    write(os.path.join(idx, "classes.txt"), b"alpha\nbeta\ngamma\n")

    folder = os.path.join(OUT, "folder")
    write(os.path.join(folder, "ant", "x.PNG"), png(1, 1, [(1, 2, 3)]))
    write(os.path.join(folder, "ant", "notes.txt"), b"not an image\n")
    write(os.path.join(folder, "ant", "._x.png"), b"\0\x05\x16\x07 AppleDouble resource fork, not a PNG")
    write(os.path.join(folder, "bird", "a.bmp"), bmp(2, 2, [(4, 5, 6), (40, 50, 60), (41, 51, 61), (42, 52, 62)]))
    write(os.path.join(folder, "bird", "b.pgm"), pgm(1, 2, [7, 70]))
    write(os.path.join(folder, "cat", "1.png"), png(2, 2, [(8, 9, 10), (80, 90, 100), (81, 91, 101), (82, 92, 102)]))
    write(os.path.join(folder, "cat", "sub", "2.ppm"), ppm(2, 1, [(11, 12, 13), (110, 120, 130)]))
    write(os.path.join(folder, ".cache", "thumb.png"), png(1, 1, [(0, 0, 0)]))

    csv = os.path.join(OUT, "csv")
    write(os.path.join(csv, "images", "with,comma.ppm"), ppm(1, 1, [(21, 22, 23)]))
    write(os.path.join(csv, "images", "plain.pgm"), pgm(1, 1, [24]))
    write(os.path.join(csv, "labels.csv"),
          b'path,label\n'
          b'"images/with,comma.ppm","bird"\n'
          b'../folder/cat/1.png,cat\n'
          b'\n'
          b'images/plain.pgm, cat \n')


if __name__ == "__main__":
    main()
