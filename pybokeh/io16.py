"""Colour PNG and TIFF files with more than 8 bits per channel, which Pillow cannot hold.

Pillow has no 16-bit colour mode: it reads a 16-bit RGB PNG or TIFF as 8-bit
and cannot write one.  Decoding goes through ``imagecodecs`` (libpng and
libtiff; the ``16bit`` extra, ``pip install "pybokeh[16bit]"``): files are
untrusted input, and a decoder of record is safer than a new one.  Encoding
needs no extra: PNG is zlib-compressed scanlines with an adaptive filter per
row, TIFF is deflate-compressed strips with an IFD serialised by Pillow's own
TIFF directory writer (so EXIF sub-IFDs come out as Pillow writes them for 8-bit
TIFFs).  The tests read both back with libpng, libtiff and Pillow.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

EXTRA_HINT = 'pip install "pybokeh[16bit]"'
#: Bytes of compressed data per PNG IDAT chunk (any size is valid; libpng writes 8 KiB).
_IDAT_BYTES = 1 << 20
#: Uncompressed bytes per TIFF strip.
_STRIP_BYTES = 1 << 16
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def imagecodecs():
    """The ``imagecodecs`` module, or None when the ``16bit`` extra is not installed."""
    try:
        import imagecodecs as module
    except ImportError:
        return None
    return module


def decode(data: bytes, fmt: str) -> np.ndarray:
    """Decode a PNG or TIFF (its first image) to H×W×C at its own bit depth (needs imagecodecs).

    Errors of the decoders surface as ``ValueError`` with their message.
    """
    module = imagecodecs()
    if module is None:
        raise ImportError(f"16-bit colour needs the 16bit extra: {EXTRA_HINT}")
    try:
        array = module.png_decode(data) if fmt == "PNG" else module.tiff_decode(data, index=0)
    except Exception as exc:  # imagecodecs raises its own error types per codec
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return np.asarray(array)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _filtered_rows(raw: np.ndarray, bpp: int) -> bytes:
    """PNG scanlines with a filter byte each: per row the one of Sub, Up and Paeth with the
    smallest sum of absolute (signed) differences, libpng's heuristic."""
    h = raw.shape[0]
    a = np.zeros_like(raw)
    a[:, bpp:] = raw[:, :-bpp]                  # left
    b = np.zeros_like(raw)
    b[1:] = raw[:-1]                            # up
    c = np.zeros_like(raw)
    c[1:, bpp:] = raw[:-1, :-bpp]               # up-left
    ai, bi, ci = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    p = ai + bi - ci
    pa, pb, pc = np.abs(p - ai), np.abs(p - bi), np.abs(p - ci)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = (raw - a, raw - b, raw - paeth)  # uint8 arithmetic wraps mod 256, as PNG defines
    cost = np.stack([np.abs(f.view(np.int8).astype(np.int32)).sum(axis=1) for f in candidates])
    best = np.argmin(cost, axis=0)
    out = np.empty((h, raw.shape[1] + 1), np.uint8)
    out[:, 0] = np.array((1, 2, 4), np.uint8)[best]     # PNG filter types Sub, Up, Paeth
    for k, f in enumerate(candidates):
        rows = best == k
        out[rows, 1:] = f[rows]
    return out.tobytes()


def encode_png(image: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None) -> bytes:
    """A 16-bit RGB PNG of an H×W×3 uint16 image, with an ICC profile (iCCP) and EXIF (eXIf).

    ``exif`` is the TIFF-structured EXIF block (without JPEG's ``Exif\\0\\0`` prefix).
    """
    h, w, channels = image.shape
    if image.dtype != np.uint16 or channels != 3:
        raise ValueError(f"encode_png takes H×W×3 uint16, got {image.shape} {image.dtype}")
    raw = np.ascontiguousarray(image, ">u2").view(np.uint8).reshape(h, w * 6)
    data = zlib.compress(_filtered_rows(raw, 6), 6)
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(_chunk(b"eXIf", exif))
    parts += [_chunk(b"IDAT", data[i:i + _IDAT_BYTES]) for i in range(0, max(len(data), 1), _IDAT_BYTES)]
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


#: TIFF tags that describe the pixel data of the file they are in: never copied from a
#: source's EXIF into an output (the output writes its own).
TIFF_STRUCTURE_TAGS = frozenset({
    254, 255, 256, 257, 258, 259, 262, 263, 266, 269, 273, 277, 278, 279, 280, 281, 284, 288, 289, 290, 291,
    292, 293, 317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514, 529, 530, 531, 532,
    700, 33723, 34377, 34675,
})


def encode_tiff(image: np.ndarray, icc_profile: bytes | None = None, exif=None) -> bytes:
    """A 16-bit RGB TIFF of an H×W×3 uint16 image: deflate strips with the horizontal
    predictor, the ICC profile (tag 34675) and EXIF.

    ``exif`` is a ``PIL.Image.Exif`` whose IFD0 tags go into the image's IFD (less
    :data:`TIFF_STRUCTURE_TAGS`) and whose EXIF and GPS sub-IFDs (tags 34665, 34853;
    dicts or offsets Pillow resolves) are written as sub-IFDs.
    """
    from PIL import TiffImagePlugin, TiffTags

    h, w, channels = image.shape
    if image.dtype != np.uint16 or channels != 3:
        raise ValueError(f"encode_tiff takes H×W×3 uint16, got {image.shape} {image.dtype}")
    rows = max(1, _STRIP_BYTES // (w * 6))
    strips = []
    for y in range(0, h, rows):
        block = np.array(image[y:y + rows], dtype="<u2", copy=True)
        block[:, 1:] -= image[y:y + rows, :-1]      # horizontal differencing per channel, mod 2**16
        strips.append(zlib.compress(block.tobytes(), 6))
    header = b"II*\x00\x08\x00\x00\x00"
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=header)
    if exif is not None:
        for tag, value in exif.items():
            if tag not in TIFF_STRUCTURE_TAGS and tag not in (0x8769, 0x8825):
                ifd[tag] = value
        for tag in (0x8769, 0x8825):
            sub = exif.get(tag) if isinstance(exif.get(tag), dict) else dict(exif.get_ifd(tag))
            if sub:
                ifd[tag] = sub
    ifd[256], ifd[257], ifd[277], ifd[278] = w, h, 3, rows
    ifd[258] = (16, 16, 16)
    ifd[259] = 8                                         # Adobe deflate
    ifd[262] = 2                                         # RGB
    ifd[284] = 1                                         # chunky
    ifd[317] = 2                                         # horizontal predictor
    ifd[339] = (1, 1, 1)                                 # unsigned integers
    # Pillow's writer places StripOffsets relative to the end of the directory, where the strips follow.
    ifd[273] = tuple(int(v) for v in np.concatenate(([0], np.cumsum([len(s) for s in strips[:-1]]))))
    ifd[279] = tuple(len(s) for s in strips)
    ifd.tagtype[273] = ifd.tagtype[279] = TiffTags.LONG
    if icc_profile:
        ifd[34675] = icc_profile
        ifd.tagtype[34675] = TiffTags.UNDEFINED
    return header + ifd.tobytes(8) + b"".join(strips)
