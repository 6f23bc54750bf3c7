#!/usr/bin/env python3
"""Regenerate every fixture under tests/fixtures/images/ for the Imaging tests.

Run with the system Python (Debian: python3-pil, python3-numpy, libjpeg-turbo-progs for cjpeg/djpeg):

    /usr/bin/python3 reference/make_image_fixtures.py

Every source picture is synthetic (gradients, shapes and seeded noise drawn here), so the fixtures can be
committed freely. Expected outputs are written beside each input as `<name>.expected.ppm` (binary P6, always RGB):
  * JPEG: djpeg's output (libjpeg-turbo defaults: islow IDCT, fancy upsampling), gray replicated to RGB,
    EXIF variants rotated/flipped the way PIL's ImageOps.exif_transpose does; CMYK: PIL's convert('RGB').
  * PNG / BMP / PNM: the exact RGB the file encodes (alpha dropped, 16-bit -> high byte, palette looked up),
    computed here with numpy and cross-checked against PIL wherever PIL's own conversion agrees with ours.
  * Resize: PIL's Image.resize (the path timm's eval transform takes), stored as PNG to keep the size down.
  * Preprocess: timm's eval transform (Resize(248, bicubic) -> CenterCrop(224) -> ToTensor -> Normalize(0.5, 0.5))
    reimplemented with PIL + numpy, dumped as float32 little-endian CHW and gzip-compressed.
Files are byte-for-byte reproducible with the same libjpeg-turbo (2.1.x), zlib and Pillow versions.
"""
import gzip
import os
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures", "images"))


# ----------------------------------------------------------------------------------------------- helpers

def synth(w, h, seed, noise=10.0):
    """A synthetic RGB picture: gradients, a disc, a bar, a diagonal stripe pattern and seeded noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 128.0 + 100.0 * np.sin(x / 3.0 + y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    disc = (x - w * 0.35) ** 2 + (y - h * 0.45) ** 2 < (min(w, h) * 0.25) ** 2
    img[disc] = [250.0, 40.0, 30.0]
    bar = (x > w * 0.6) & (x < w * 0.8) & (y > h * 0.2) & (y < h * 0.9)
    img[bar] = [20.0, 30.0, 200.0]
    stripes = ((x + y) // 3) % 2 == 0
    img[stripes & (y < h * 0.2)] = [255.0, 255.0, 255.0]
    img += rng.normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def path(name):
    return os.path.join(OUT, name)


def write_ppm(name, rgb):
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    h, w, _ = rgb.shape
    with open(path(name), "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(rgb.tobytes())


def read_pnm_bytes(data):
    """Parse djpeg's P5/P6 output (no comments) into an RGB array."""
    parts = data.split(maxsplit=4)
    magic, w, h, maxval = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
    assert maxval == 255
    raw = parts[4]
    if magic == b"P6":
        return np.frombuffer(raw[: w * h * 3], np.uint8).reshape(h, w, 3)
    gray = np.frombuffer(raw[: w * h], np.uint8).reshape(h, w)
    return np.repeat(gray[:, :, None], 3, axis=2)


def run(args, stdin=None):
    return subprocess.run(args, input=stdin, stdout=subprocess.PIPE, check=True).stdout


def ppm_bytes(rgb):
    h, w, _ = rgb.shape
    return b"P6\n%d %d\n255\n" % (w, h) + np.ascontiguousarray(rgb).tobytes()


def check_equal(a, b, what):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or not np.array_equal(a, b):
        raise SystemExit("cross-check failed: %s" % what)


# ----------------------------------------------------------------------------------------------- JPEG

def jpeg(name, src_rgb, *cjpeg_args, scans=None):
    """cjpeg the picture, then store djpeg's decode of it as the expected output."""
    args = ["cjpeg", "-quality", "85", *cjpeg_args]
    if scans is not None:
        script = path("_scans.txt")
        with open(script, "w") as f:
            f.write(scans)
        args += ["-scans", script]
    data = run(args, ppm_bytes(src_rgb))
    if scans is not None:
        os.remove(script)
    with open(path(name + ".jpg"), "wb") as f:
        f.write(data)
    expected = read_pnm_bytes(run(["djpeg"], data))
    write_ppm(name + ".expected.ppm", expected)
    return data, expected


def exif_app1(orientation, big_endian):
    """A minimal APP1 Exif segment: TIFF header + IFD0 holding one entry, Orientation (0x0112, SHORT)."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    # One more harmless entry before the orientation so the parser has to walk the IFD.
    ifd = struct.pack(e + "H", 2)
    ifd += struct.pack(e + "HHI", 0x010F, 2, 4) + b"Syn\0"                       # Make = "Syn" (inline ASCII)
    ifd += struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)                # Orientation
    ifd += struct.pack(e + "I", 0)
    payload = b"Exif\0\0" + tiff + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def exif_transpose(rgb, orientation):
    """What ImageOps.exif_transpose does for each orientation value."""
    im = Image.fromarray(rgb)
    ops = {2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM, 5: Image.TRANSPOSE,
           6: Image.ROTATE_270, 7: Image.TRANSVERSE, 8: Image.ROTATE_90}
    if orientation in ops:
        im = im.transpose(ops[orientation])
    return np.asarray(im)


def make_jpegs():
    big = synth(40, 24, seed=1)
    odd = synth(37, 29, seed=2)
    jpeg("jpeg_444", big, "-sample", "1x1")
    jpeg("jpeg_420", big, "-sample", "2x2")
    jpeg("jpeg_422", big, "-sample", "2x1")
    jpeg("jpeg_440", big, "-sample", "1x2")
    jpeg("jpeg_411", big, "-sample", "4x1")                       # h4v1 chroma: libjpeg replicates
    jpeg("jpeg_mixed", big, "-sample", "2x1,1x2,1x1")             # luma not at max sampling on one axis
    jpeg("jpeg_optimize", big, "-optimize")                        # custom Huffman tables
    jpeg("jpeg_gray", big, "-grayscale")
    jpeg("jpeg_rgb", big, "-rgb", "-sample", "1x1")               # Adobe APP14 transform=0: components are RGB
    jpeg("jpeg_restart1", big, "-restart", "1")
    jpeg("jpeg_restart3b", big, "-restart", "3B")
    jpeg("jpeg_prog_420", big, "-progressive")
    jpeg("jpeg_prog_444", big, "-progressive", "-sample", "1x1")
    jpeg("jpeg_prog_gray", big, "-grayscale", "-progressive")
    jpeg("jpeg_prog_restart", big, "-progressive", "-restart", "2B")
    jpeg("jpeg_odd_420", odd)
    jpeg("jpeg_odd_prog_422", odd, "-progressive", "-sample", "2x1")
    # Sequential but multi-scan: one non-interleaved scan per component.
    jpeg("jpeg_multiscan", big, "-sample", "2x2",
         scans="0: 0 63 0 0;\n1: 0 63 0 0;\n2: 0 63 0 0;\n")
    # Progressive with successive approximation on every band, chroma DC non-interleaved.
    jpeg("jpeg_prog_sa", odd, "-progressive", "-sample", "2x2", scans=(
        "0: 0 0 0 2;\n1: 0 0 0 1;\n2: 0 0 0 1;\n"
        "0: 1 5 0 3;\n0: 6 63 0 2;\n1: 1 63 0 1;\n2: 1 63 0 1;\n"
        "0: 0 0 2 1;\n0: 1 5 3 2;\n0: 1 63 2 1;\n0: 1 63 1 0;\n"
        "1: 1 63 1 0;\n2: 1 63 1 0;\n0,1,2: 0 0 1 0;\n"))
    # Truncated files: libjpeg decodes what is there, pads the interrupted MCU with zero bits and leaves the rest grey.
    for name, args in [("jpeg_truncated", ["-sample", "2x2"]), ("jpeg_prog_truncated", ["-progressive"])]:
        data = run(["cjpeg", "-quality", "85", *args], ppm_bytes(big))
        # Cut in the middle of the entropy data of the first scan (baseline) or of the sixth (progressive: a refinement).
        sos = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
        k = 0 if len(sos) == 1 else 5
        start = sos[k] + 2 + (data[sos[k] + 2] << 8 | data[sos[k] + 3])
        end = sos[k + 1] if k + 1 < len(sos) else len(data) - 2
        data = data[: (start + end) // 2]
        with open(path(name + ".jpg"), "wb") as f:
            f.write(data)
        decoded = subprocess.run(["djpeg"], input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        write_ppm(name + ".expected.ppm", read_pnm_bytes(decoded))
    # Arithmetic coding: the decoder must refuse it with a clear message (no expected image).
    data = run(["cjpeg", "-arithmetic"], ppm_bytes(odd))
    with open(path("jpeg_arith.jpg"), "wb") as f:
        f.write(data)

    # EXIF orientations 1..8 on the odd-sized baseline (little- and big-endian TIFF headers alternate).
    base, decoded = jpeg("jpeg_exif_base", odd)
    os.remove(path("jpeg_exif_base.jpg"))
    os.remove(path("jpeg_exif_base.expected.ppm"))
    for o in range(1, 9):
        data = base[:2] + exif_app1(o, big_endian=(o % 2 == 0)) + base[2:]
        with open(path("jpeg_exif_%d.jpg" % o), "wb") as f:
            f.write(data)
        write_ppm("jpeg_exif_%d.expected.ppm" % o, exif_transpose(decoded, o))
        check_equal(np.asarray(ImageOps.exif_transpose(Image.open(path("jpeg_exif_%d.jpg" % o))).convert("RGB")).shape,
                    exif_transpose(decoded, o).shape, "exif %d" % o)

    # CMYK (Adobe, inverted, as Photoshop and PIL write it); expected = PIL's CMYK -> RGB conversion.
    cmyk = np.concatenate([255 - odd, np.minimum(odd.min(axis=2, keepdims=True), 90)], axis=2).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(path("jpeg_cmyk.jpg"), quality=90)
    write_ppm("jpeg_cmyk.expected.ppm", np.asarray(Image.open(path("jpeg_cmyk.jpg")).convert("RGB")))
    # YCCK: the same file with Adobe's transform flag set to 2, so libjpeg runs YCC->RGB on the first three components
    # before treating them as inverted CMY; PIL's result is again the reference.
    data = bytearray(open(path("jpeg_cmyk.jpg"), "rb").read())
    adobe = data.index(b"Adobe")
    assert data[adobe + 11] == 0
    data[adobe + 11] = 2
    with open(path("jpeg_ycck.jpg"), "wb") as f:
        f.write(bytes(data))
    write_ppm("jpeg_ycck.expected.ppm", np.asarray(Image.open(path("jpeg_ycck.jpg")).convert("RGB")))


# ----------------------------------------------------------------------------------------------- PNG

def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def pack_row(samples, bit_depth):
    """One row of samples (ints) -> bytes, big-endian for 16-bit, MSB-first packing below 8 bits."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if bit_depth == 8:
        return bytes(int(v) for v in samples)
    per_byte = 8 // bit_depth
    out = bytearray((len(samples) + per_byte - 1) // per_byte)
    for i, v in enumerate(samples):
        out[i // per_byte] |= int(v) << (8 - bit_depth * (i % per_byte + 1))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filter_rows(rows, bpp, first_filter):
    """Filter each row with type (first_filter + row index) % 5 so every filter type is exercised."""
    out = bytearray()
    prior = bytes(len(rows[0])) if rows else b""
    for i, row in enumerate(rows):
        ft = (first_filter + i) % 5
        f = bytearray(len(row))
        for x in range(len(row)):
            a = row[x - bpp] if x >= bpp else 0
            b = prior[x]
            c = prior[x - bpp] if x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ft]
            f[x] = (row[x] - pred) & 0xFF
        out += bytes([ft]) + f
        prior = row
    return bytes(out)


def write_png(name, samples, color_type, bit_depth, interlace=False, palette=None, idat_chunk=None, first_filter=0):
    """A small independent PNG encoder: every colour type/bit depth, all five filters, Adam7, split IDATs."""
    h, w = samples.shape[:2]
    ch = CHANNELS[color_type]
    samples = samples.reshape(h, w, ch)
    bpp = max(1, ch * bit_depth // 8)
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for p, (x0, y0, dx, dy) in enumerate(passes):
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        rows = [pack_row(sub[r].reshape(-1), bit_depth) for r in range(sub.shape[0])]
        raw += filter_rows(rows, bpp, first_filter + p)
    comp = zlib.compress(raw, 9)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    out += png_chunk(b"tEXt", b"Comment\0synthetic fixture")
    step = idat_chunk or len(comp)
    for i in range(0, len(comp), step):
        out += png_chunk(b"IDAT", comp[i:i + step])
    out += png_chunk(b"IEND", b"")
    with open(path(name), "wb") as f:
        f.write(out)


def expected_rgb(samples, color_type, bit_depth, palette=None):
    """What our decoder must produce: alpha dropped, 16-bit -> high byte, low gray depths scaled, palette looked up."""
    h, w = samples.shape[:2]
    s = samples.reshape(h, w, CHANNELS[color_type]).astype(np.int64)
    if color_type == 3:
        pal = np.asarray(palette, np.uint8)
        return pal[s[:, :, 0]]
    if bit_depth == 16:
        s = s >> 8
    elif bit_depth < 8:
        s = s * (255 // ((1 << bit_depth) - 1))
    if color_type in (0, 4):
        return np.repeat(s[:, :, :1], 3, axis=2).astype(np.uint8)
    return s[:, :, :3].astype(np.uint8)


def make_pngs():
    w, h = 23, 19
    rgb = synth(w, h, seed=3)
    rng = np.random.RandomState(4)
    gray = rgb.mean(axis=2).astype(np.uint8)
    alpha = rng.randint(0, 256, (h, w)).astype(np.uint8)

    # PIL-written files (8-bit modes, 1-bit, palette, I;16).
    def pil(name, im, expected):
        im.save(path(name + ".png"))
        write_ppm(name + ".expected.ppm", expected)

    pil("png_L", Image.fromarray(gray, "L"), gray)
    pil("png_LA", Image.fromarray(np.stack([gray, alpha], -1), "LA"), gray)
    pil("png_RGB", Image.fromarray(rgb, "RGB"), rgb)
    pil("png_RGBA", Image.fromarray(np.concatenate([rgb, alpha[:, :, None]], -1), "RGBA"), rgb)
    pal_im = Image.fromarray(rgb).quantize(colors=200, method=Image.MEDIANCUT)
    pil("png_P", pal_im, np.asarray(pal_im.convert("RGB")))
    pal16 = Image.fromarray(rgb).quantize(colors=16, method=Image.MEDIANCUT)
    pal16.save(path("png_P4.png"), bits=4)
    write_ppm("png_P4.expected.ppm", np.asarray(pal16.convert("RGB")))
    bw = Image.fromarray(gray > 128)
    pil("png_1bit", bw, np.where(gray > 128, 255, 0).astype(np.uint8))
    g16 = (gray.astype(np.uint16) * 257) ^ rng.randint(0, 256, (h, w)).astype(np.uint16)
    Image.fromarray(g16, "I;16").save(path("png_I16.png"))
    write_ppm("png_I16.expected.ppm", (g16 >> 8).astype(np.uint8))
    # PIL reads these back exactly as we expect (I;16 aside: PIL clips 16-bit gray to 255 instead of >> 8).
    for n in ["png_L", "png_LA", "png_RGB", "png_RGBA", "png_P", "png_P4", "png_1bit"]:
        check_equal(np.asarray(Image.open(path(n + ".png")).convert("RGB")),
                    read_pnm_bytes(open(path(n + ".expected.ppm"), "rb").read()), n)
    check_equal(np.asarray(Image.open(path("png_I16.png"))), g16, "png_I16 samples")

    # Our own encoder: the depths PIL cannot write, all filters, split IDATs and Adam7.
    rgb16 = rgb.astype(np.uint16) * 257 ^ rng.randint(0, 256, (h, w, 3)).astype(np.uint16)
    rgba16 = np.concatenate([rgb16, (alpha.astype(np.uint16) * 257)[:, :, None]], -1)
    la16 = np.stack([g16, alpha.astype(np.uint16) * 255], -1)
    la8 = np.stack([gray, alpha], -1)
    rgba8 = np.concatenate([rgb, alpha[:, :, None]], -1)
    gray2 = gray >> 6
    gray4 = gray >> 4
    gray1 = gray >> 7
    pal = rng.randint(0, 256, (16, 3))
    idx4 = rng.randint(0, 16, (h, w))
    pal2 = pal[:4]
    idx2 = idx4 & 3
    cases = [
        # name, samples, colour type, depth, interlace, palette, idat split
        ("png_rgb16", rgb16, 2, 16, False, None, None),
        ("png_rgba16", rgba16, 6, 16, False, None, None),
        ("png_la16", la16, 4, 16, False, None, None),
        ("png_gray1", gray1, 0, 1, False, None, None),
        ("png_gray2", gray2, 0, 2, False, None, None),
        ("png_gray4", gray4, 0, 4, False, None, None),
        ("png_pal2", idx2, 3, 2, False, pal2, None),
        ("png_pal4", idx4, 3, 4, False, pal, None),
        ("png_filters_rgb8", rgb, 2, 8, False, None, 64),       # all five filters, IDAT split every 64 bytes
        ("png_adam7_rgb8", rgb, 2, 8, True, None, None),
        ("png_adam7_rgba8", rgba8, 6, 8, True, None, 100),
        ("png_adam7_la8", la8, 4, 8, True, None, None),
        ("png_adam7_rgb16", rgb16, 2, 16, True, None, None),
        ("png_adam7_gray1", gray1, 0, 1, True, None, None),
        ("png_adam7_gray2", gray2, 0, 2, True, None, None),
        ("png_adam7_pal4", idx4, 3, 4, True, pal, None),
        ("png_adam7_tiny", rgb[:3, :5], 2, 8, True, None, None),  # 5x3: some Adam7 passes are empty
        ("png_adam7_1x1", rgb[:1, :1], 2, 8, True, None, None),
    ]
    for i, (name, samples, ct, bd, il, palette, split) in enumerate(cases):
        write_png(name + ".png", samples, ct, bd, interlace=il, palette=palette, idat_chunk=split, first_filter=i)
        exp = expected_rgb(samples, ct, bd, palette)
        write_ppm(name + ".expected.ppm", exp)
        # Validate our encoder with PIL wherever PIL's conversion to RGB is the same as ours.
        im = Image.open(path(name + ".png"))
        if name in ("png_la16",):
            continue  # PIL has no LA;16 mode
        if ct == 0 and bd == 16:
            continue
        check_equal(np.asarray(im.convert("RGB")), exp, name)


# ----------------------------------------------------------------------------------------------- BMP

def bmp_bytes(w, h, bpp, rows_bytes, header_size=40, compression=0, masks=None, palette=None, top_down=False,
              palette_entry=4):
    """A small independent BMP encoder. rows_bytes: pixel rows top-to-bottom, already packed (unpadded)."""
    stride = ((w * bpp + 31) // 32) * 4
    body = b""
    order = rows_bytes if top_down else rows_bytes[::-1]
    for r in order:
        body += r + bytes(stride - len(r))
    pal = b""
    if palette is not None:
        for c in palette:
            pal += bytes([c[2], c[1], c[0]]) + (b"\0" if palette_entry == 4 else b"")
    extra_masks = b""
    if header_size == 12:
        dib = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        dib = struct.pack("<IiiHHIIiiII", header_size, w, -h if top_down else h, 1, bpp, compression,
                          len(body), 2835, 2835, len(palette) if palette is not None else 0, 0)
        if header_size >= 52:
            m = masks or (0, 0, 0, 0)
            dib += struct.pack("<IIII", *m)[: (12 if header_size == 52 else 16)]
        elif masks is not None:
            extra_masks = struct.pack("<III", *masks[:3])
        if header_size >= 108:
            dib += b"sRGB" + bytes(36) + bytes(12)            # colour space type, endpoints, gamma
        if header_size >= 124:
            dib += struct.pack("<IIII", 4, 0, 0, 0)           # intent, profile data/size, reserved
        assert len(dib) == header_size, (header_size, len(dib))
    offset = 14 + len(dib) + len(extra_masks) + len(pal)
    fh = b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset)
    return fh + dib + extra_masks + pal + body


def make_bmps():
    w, h = 23, 17                       # odd width: every row needs padding
    rgb = synth(w, h, seed=5)
    rng = np.random.RandomState(6)
    bgr_rows = [rgb[r, :, ::-1].tobytes() for r in range(h)]

    def save(name, data, expected, pil_check=True):
        with open(path(name + ".bmp"), "wb") as f:
            f.write(data)
        write_ppm(name + ".expected.ppm", expected)
        if pil_check:
            check_equal(np.asarray(Image.open(path(name + ".bmp")).convert("RGB")), expected, name)

    # PIL's own writer for the common cases.
    Image.fromarray(rgb).save(path("bmp_24_pil.bmp"))
    write_ppm("bmp_24_pil.expected.ppm", rgb)
    pal_im = Image.fromarray(rgb).quantize(colors=100, method=Image.MEDIANCUT)
    pal_im.save(path("bmp_8_pil.bmp"))
    write_ppm("bmp_8_pil.expected.ppm", np.asarray(pal_im.convert("RGB")))
    bw = rgb.mean(axis=2) > 128
    Image.fromarray(bw).save(path("bmp_1_pil.bmp"))
    write_ppm("bmp_1_pil.expected.ppm", np.where(bw, 255, 0).astype(np.uint8))

    save("bmp_24_topdown", bmp_bytes(w, h, 24, bgr_rows, top_down=True), rgb)
    save("bmp_24_v4", bmp_bytes(w, h, 24, bgr_rows, header_size=108), rgb)
    save("bmp_24_core", bmp_bytes(w, h, 24, bgr_rows, header_size=12), rgb)
    alpha = rng.randint(0, 256, (h, w)).astype(np.uint8)
    bgra_rows = [np.concatenate([rgb[r, :, ::-1], alpha[r, :, None]], 1).tobytes() for r in range(h)]
    save("bmp_32", bmp_bytes(w, h, 32, bgra_rows), rgb)
    save("bmp_32_v5_bitfields", bmp_bytes(w, h, 32, bgra_rows, header_size=124, compression=3,
                                          masks=(0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)), rgb)
    # Unusual channel order via BI_BITFIELDS masks after a 40-byte header: bytes are R, G, B, X.
    rgbx_rows = [np.concatenate([rgb[r], alpha[r, :, None]], 1).tobytes() for r in range(h)]
    save("bmp_32_bitfields_rgbx", bmp_bytes(w, h, 32, rgbx_rows, compression=3,
                                            masks=(0x000000FF, 0x0000FF00, 0x00FF0000)), rgb, pil_check=False)
    # 16-bit 5-6-5 (BI_BITFIELDS) and 5-5-5 (BI_RGB); channels expand as v * 255 // max, like PIL's unpackers.
    r5, g6, g5, b5 = [c.astype(np.int64) for c in (rgb[:, :, 0] >> 3, rgb[:, :, 1] >> 2, rgb[:, :, 1] >> 3,
                                                   rgb[:, :, 2] >> 3)]
    v565 = (r5 << 11) | (g6 << 5) | b5
    v555 = (r5 << 10) | (g5 << 5) | b5
    exp565 = np.stack([r5 * 255 // 31, g6 * 255 // 63, b5 * 255 // 31], -1).astype(np.uint8)
    exp555 = np.stack([r5 * 255 // 31, g5 * 255 // 31, b5 * 255 // 31], -1).astype(np.uint8)
    save("bmp_16_565", bmp_bytes(w, h, 16, [v565[r].astype("<u2").tobytes() for r in range(h)], compression=3,
                                 masks=(0xF800, 0x07E0, 0x001F)), exp565)
    save("bmp_16_555", bmp_bytes(w, h, 16, [v555[r].astype("<u2").tobytes() for r in range(h)]), exp555)
    # 4-bit and 8-bit palettes written by hand (8-bit: top-down, short palette).
    pal = [tuple(int(v) for v in rng.randint(0, 256, 3)) for _ in range(16)]
    idx = rng.randint(0, 16, (h, w))
    rows4 = [pack_row(idx[r], 4) for r in range(h)]
    exp_pal = np.asarray(pal, np.uint8)[idx]
    save("bmp_4", bmp_bytes(w, h, 4, rows4, palette=pal), exp_pal)
    save("bmp_8_topdown", bmp_bytes(w, h, 8, [bytes(int(v) for v in idx[r]) for r in range(h)], palette=pal,
                                    top_down=True), exp_pal)


# ----------------------------------------------------------------------------------------------- PNM

def make_pnms():
    w, h = 21, 13
    rgb = synth(w, h, seed=7)
    gray = rgb.mean(axis=2).astype(np.uint8)
    rng = np.random.RandomState(8)

    def save(name, header, body, expected, pil_check=True):
        if expected.ndim == 2:
            expected = np.repeat(expected[:, :, None], 3, axis=2)
        with open(path(name), "wb") as f:
            f.write(header + body)
        write_ppm(name.rsplit(".", 1)[0] + ".expected.ppm", expected)
        if pil_check:
            check_equal(np.asarray(Image.open(path(name)).convert("RGB")), expected, name)

    save("pnm_p6.ppm", b"P6\n# a comment\n%d # width\n%d\n# another\n255\n" % (w, h), rgb.tobytes(), rgb)
    save("pnm_p5.pgm", b"P5 %d %d 255\n" % (w, h), gray.tobytes(), gray)
    scale = lambda v, m: np.array([round(int(x) / m * 255) for x in v.reshape(-1)], np.uint8).reshape(v.shape)
    v100 = (rgb.astype(np.int64) * 100 // 255)
    save("pnm_p6_maxval100.ppm", b"P6\n%d %d\n100\n" % (w, h), v100.astype(np.uint8).tobytes(), scale(v100, 100))
    v16 = rng.randint(0, 65536, (h, w, 3))
    save("pnm_p6_16bit.ppm", b"P6\n%d %d\n65535\n" % (w, h), v16.astype(">u2").tobytes(), scale(v16, 65535))
    g12 = rng.randint(0, 4096, (h, w))
    # PIL opens 16-bit PGM as mode I and clips to 255 on convert('RGB'); we scale to 8 bits instead.
    save("pnm_p5_12bit.pgm", b"P5\n%d %d\n4095\n" % (w, h), g12.astype(">u2").tobytes(), scale(g12, 4095),
         pil_check=False)


# ----------------------------------------------------------------------------------------------- resize / preprocess

def make_resize():
    src = synth(61, 47, seed=9, noise=0.0)
    Image.fromarray(src).save(path("resize_src.png"), optimize=True)
    filters = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
    sizes = [(224, 224), (17, 13), (100, 80), (61, 20), (30, 47)]
    for fname, f in filters.items():
        for (w, h) in sizes:
            if (w, h) == (224, 224) and fname != "bicubic":
                continue  # the timm case; bilinear upscaling is covered by 100x80
            if fname == "nearest" and (w, h) not in ((17, 13), (100, 80), (30, 47)):
                continue
            out = Image.fromarray(src).resize((w, h), f)
            out.save(path("resize_%s_%dx%d.png" % (fname, w, h)), optimize=True)


def timm_eval(rgb, input_size=224, crop_pct=0.9):
    """timm's eval transform written out with PIL + numpy (torchvision Resize(int) + CenterCrop semantics)."""
    im = Image.fromarray(rgb)
    scale = int(np.floor(input_size / crop_pct))
    w, h = im.size
    if w <= h:
        nw, nh = scale, int(scale * h / w)
    else:
        nw, nh = int(scale * w / h), scale
    im = im.resize((nw, nh), Image.BICUBIC)
    top = int(round((nh - input_size) / 2.0))
    left = int(round((nw - input_size) / 2.0))
    a = np.asarray(im)[top:top + input_size, left:left + input_size].astype(np.float32) / np.float32(255.0)
    a = (a - np.float32(0.5)) / np.float32(0.5)
    return np.ascontiguousarray(a.transpose(2, 0, 1)).astype("<f4")


def make_preprocess():
    # 320x230: the resized width (345) makes the crop offset (60.5) exercise Python's round-half-even.
    src = synth(320, 230, seed=10, noise=0.0)
    Image.fromarray(src).save(path("preprocess_src.png"), optimize=True)
    ref = timm_eval(src)
    with gzip.GzipFile(path("preprocess_timm_224.f32.gz"), "wb", mtime=0) as f:
        f.write(ref.tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f != ".gitattributes":
            os.remove(os.path.join(OUT, f))
    make_jpegs()
    make_pngs()
    make_bmps()
    make_pnms()
    make_resize()
    make_preprocess()
    files = [f for f in os.listdir(OUT) if f != ".gitattributes"]
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in files)
    print("%d files, %d bytes in %s" % (len(files), total, OUT))


if __name__ == "__main__":
    main()
