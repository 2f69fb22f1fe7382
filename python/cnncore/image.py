"""Reading and writing PNG and PGM/PPM images with numpy and zlib alone.

    img = read_image("photo.png")          # float32 in [0, 1]: (H, W) grey, (H, W, C) colour
    write_image("edges.png", img)          # floats in [0, 1] (clipped) or uint8 / uint16 arrays

The codec covers non-interlaced PNGs of 8 or 16 bits per sample (grey, grey + alpha, RGB, RGBA,
8-bit palette) and binary or ASCII PGM/PPM. Other files (interlaced or low-bit PNGs, JPEG, ...)
are read through Pillow when it is installed; the default install does not need it.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

__all__ = ["read_image", "write_image", "to_grayscale"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


class _Unsupported(Exception):
    """A valid file this codec does not decode: Pillow is tried instead."""


def read_image(path, *, as_float: bool = True) -> np.ndarray:
    """(H, W) for grey images, (H, W, C) with C = 2, 3 or 4 for colour and alpha.

    as_float=True scales to float32 in [0, 1]; False gives the stored uint8/uint16 values."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_image: no such file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        if raw.startswith(_PNG_SIGNATURE):
            arr = _decode_png(raw, path)
        elif raw[:2] in (b"P2", b"P3", b"P5", b"P6"):
            arr = _decode_pnm(raw, path)
        else:
            raise _Unsupported("not a PNG or PGM/PPM file")
    except _Unsupported as why:
        arr = _read_with_pillow(path, str(why))
    if not as_float:
        return arr
    return (arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)).astype(np.float32)


def write_image(path, image) -> None:
    """Writes (H, W) or (H, W, C) (C = 1..4) as PNG, or as PGM/PPM for a .pgm/.ppm/.pnm name.

    Floats are taken as [0, 1] and clipped; uint8 and uint16 arrays are written as they are. The
    file appears whole or not at all (written to a temporary file, then renamed)."""
    from .io import atomic_write
    path = os.fspath(path)
    arr = _as_storable(image)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pgm", ".ppm", ".pnm"):
        data = _encode_pnm(arr, ext)
    elif ext == ".png" or ext == "":
        data = _encode_png(arr)
    else:
        raise ValueError(f"write_image: path must end in .png, .pgm, .ppm or .pnm, but got "
                         f"'{path}'")
    with atomic_write(path, "wb") as f:
        f.write(data)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W) with ITU-R BT.709 luma weights (skimage.color.rgb2gray's), alpha
    dropped; (H, W) unchanged."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"to_grayscale: image must be (H, W) or (H, W, C) with C in 1..4, but "
                         f"got shape {image.shape}")
    if image.shape[2] <= 2:  # grey (+ alpha)
        return image[..., 0]
    rgb = image[..., :3].astype(np.float32)
    return (rgb @ np.array([0.2125, 0.7154, 0.0721], np.float32)).astype(np.float32)


# ---- PNG -----------------------------------------------------------------------------------------
def _chunks(raw: bytes, path: str):
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        body = raw[pos + 8:pos + 8 + length]
        crc = raw[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError(f"read_image: {path}: truncated PNG chunk {kind!r}")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"read_image: {path}: corrupt PNG (CRC mismatch in {kind!r})")
        yield kind, body
        pos += 12 + length
        if kind == b"IEND":
            return
    raise ValueError(f"read_image: {path}: truncated PNG (no IEND chunk)")


def _decode_png(raw: bytes, path: str) -> np.ndarray:
    header, palette, data = None, None, []
    for kind, body in _chunks(raw, path):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            data.append(body)
    if header is None:
        raise ValueError(f"read_image: {path}: PNG without an IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if colour not in _CHANNELS:
        raise ValueError(f"read_image: {path}: invalid PNG colour type {colour}")
    if interlace or depth not in (8, 16) or (colour == 3 and depth != 8):
        raise _Unsupported(f"PNG with bit depth {depth}, interlace {interlace}")
    channels = _CHANNELS[colour]
    bpp = channels * depth // 8
    stride = width * bpp
    try:
        flat = zlib.decompress(b"".join(data))
    except zlib.error as e:
        raise ValueError(f"read_image: {path}: corrupt PNG image data ({e})") from None
    if len(flat) != height * (stride + 1):
        raise ValueError(f"read_image: {path}: PNG image data has {len(flat)} bytes, expected "
                         f"{height * (stride + 1)} for {width}x{height}")
    rows = np.frombuffer(flat, np.uint8).reshape(height, stride + 1)
    pixels = _unfilter(rows[:, 1:], rows[:, 0], bpp, path)
    if depth == 16:
        arr = pixels.view(">u2").astype(np.uint16).reshape(height, width, channels)
    else:
        arr = pixels.reshape(height, width, channels)
    if colour == 3:
        if palette is None:
            raise ValueError(f"read_image: {path}: palette PNG without a PLTE chunk")
        if arr.max(initial=0) >= len(palette):
            raise ValueError(f"read_image: {path}: palette index beyond the PLTE chunk")
        arr = palette[arr[..., 0]]
    return arr[..., 0] if arr.shape[2] == 1 else arr


def _unfilter(rows: np.ndarray, filters: np.ndarray, bpp: int, path: str) -> np.ndarray:
    """Undoes the per-row PNG filters (None, Sub, Up, Average, Paeth) -> (H, stride) uint8."""
    height, stride = rows.shape
    out = np.zeros((height, stride), np.uint8)
    prior = np.zeros(stride, np.int32)
    for y in range(height):
        line = rows[y].astype(np.int32)
        kind = filters[y]
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum of bpp-strided bytes
            cur = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:
            cur = (line + prior) & 0xFF
        elif kind in (3, 4):  # Average and Paeth depend on the pixel to the left: one at a time
            cur = np.zeros(stride + bpp, np.int32)
            up = np.concatenate([np.zeros(bpp, np.int32), prior])
            for x in range(bpp, stride + bpp, bpp):
                a, b, c = cur[x - bpp:x], up[x:x + bpp], up[x - bpp:x]
                if kind == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                cur[x:x + bpp] = (line[x - bpp:x] + pred) & 0xFF
            cur = cur[bpp:]
        else:
            raise ValueError(f"read_image: {path}: invalid PNG filter type {kind} in row {y}")
        out[y] = cur
        prior = cur
    return out


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encode_png(arr: np.ndarray) -> bytes:
    height, width = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    depth = 16 if arr.dtype == np.uint16 else 8
    samples = arr.astype(">u2") if depth == 16 else arr
    rows = samples.reshape(height, -1).view(np.uint8)
    # Filter 'Up' on every row but the first: cheap, vectorised, and compresses smooth images well.
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 0] = 0
    filtered[0, 1:] = rows[0]
    filtered[1:, 1:] = rows[1:] - rows[:-1]  # uint8 arithmetic wraps mod 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (_PNG_SIGNATURE + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)) + _png_chunk(b"IEND", b""))


# ---- PGM / PPM -----------------------------------------------------------------------------------
def _decode_pnm(raw: bytes, path: str) -> np.ndarray:
    magic = raw[:2]
    fields, pos = [], 2
    # Header: width, height, maxval as whitespace-separated ASCII, '#' comments to end of line.
    while len(fields) < 3:
        while pos < len(raw) and raw[pos:pos + 1].isspace():
            pos += 1
        if raw[pos:pos + 1] == b"#":
            pos = raw.find(b"\n", pos) + 1 or len(raw)
            continue
        start = pos
        while pos < len(raw) and not raw[pos:pos + 1].isspace():
            pos += 1
        if start == pos:
            raise ValueError(f"read_image: {path}: truncated PGM/PPM header")
        try:
            fields.append(int(raw[start:pos]))
        except ValueError:
            raise ValueError(f"read_image: {path}: bad PGM/PPM header field "
                             f"{raw[start:pos][:20]!r}") from None
    width, height, maxval = fields
    if width <= 0 or height <= 0 or not 0 < maxval < 65536:
        raise ValueError(f"read_image: {path}: bad PGM/PPM size {width}x{height} or maxval "
                         f"{maxval}")
    channels = 3 if magic in (b"P3", b"P6") else 1
    count = width * height * channels
    dtype = np.uint8 if maxval < 256 else np.uint16
    if magic in (b"P5", b"P6"):
        body = raw[pos + 1:]  # exactly one whitespace byte ends the header
        itemsize = 1 if dtype == np.uint8 else 2
        if len(body) < count * itemsize:
            raise ValueError(f"read_image: {path}: PGM/PPM data has {len(body)} bytes, expected "
                             f"{count * itemsize}")
        values = np.frombuffer(body, np.uint8 if itemsize == 1 else ">u2", count)
    else:
        try:
            values = np.array(raw[pos:].split()[:count], dtype=np.int64)
        except ValueError:
            raise ValueError(f"read_image: {path}: non-numeric ASCII PGM/PPM data") from None
        if values.size != count:
            raise ValueError(f"read_image: {path}: ASCII PGM/PPM has {values.size} values, "
                             f"expected {count}")
    if values.max(initial=0) > maxval:
        raise ValueError(f"read_image: {path}: PGM/PPM value above maxval {maxval}")
    values = values.astype(np.int64)
    full = np.iinfo(dtype).max
    if maxval != full:  # rescale so as_float divides by the dtype's maximum
        values = (values * full + maxval // 2) // maxval
    arr = values.astype(dtype).reshape(height, width, channels)
    return arr[..., 0] if channels == 1 else arr


def _encode_pnm(arr: np.ndarray, ext: str) -> bytes:
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if channels not in (1, 3):
        raise ValueError(f"write_image: PGM holds 1 channel and PPM 3, but the image has "
                         f"{channels}")
    if (ext == ".pgm") != (channels == 1) and ext != ".pnm":
        raise ValueError(f"write_image: a {ext} file needs {'1' if ext == '.pgm' else '3'} "
                         f"channel(s), but the image has {channels}")
    maxval = np.iinfo(arr.dtype).max
    height, width = arr.shape[:2]
    body = arr.astype(">u2").tobytes() if arr.dtype == np.uint16 else arr.tobytes()
    return f"{'P5' if channels == 1 else 'P6'}\n{width} {height}\n{maxval}\n".encode() + body


# ---- shared --------------------------------------------------------------------------------------
def _as_storable(image) -> np.ndarray:
    if hasattr(image, "detach"):
        image = image.detach().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] > 4) or 0 in arr.shape:
        raise ValueError(f"write_image: image must be (H, W) or (H, W, C) with C in 1..4, but "
                         f"got shape {arr.shape}")
    if arr.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"write_image: image must hold numbers, but got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("write_image: image holds NaN or infinite values")
    return np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def _read_with_pillow(path: str, why: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise ValueError(f"read_image: {path}: {why}; install Pillow to read it") from None
    try:
        with Image.open(path) as im:
            if im.mode in ("1", "L", "P", "LA", "RGB", "RGBA", "I;16"):
                im = im.convert("RGBA" if im.mode == "P" else
                                ("L" if im.mode == "1" else im.mode))
            else:
                im = im.convert("RGB")
            arr = np.array(im)
    except OSError as e:
        raise ValueError(f"read_image: {path}: cannot read the image ({e})") from None
    return arr.astype(np.uint16) if arr.dtype != np.uint8 else arr
