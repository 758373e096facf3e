"""HEIC/HEIF files through the optional ``pillow-heif`` package (``pip install "pybokeh[heif]"``)."""
from __future__ import annotations

import os
import re

from ..imagefile import ImageFileError

HEIF_EXTRA_HINT = 'pip install "pybokeh[heif]"'
#: ISO BMFF ``ftyp`` brands of HEIF stills (HEVC, AVC, AV1 and the generic ones).
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avci", b"mif2"}
#: Bytes scanned for the XMP items of a HEIC (Apple writes them before the image data).
XMP_SCAN_BYTES = 4 * 2**20

_XMP_PACKET = re.compile(rb"<x:xmpmeta.{0,262144}?</x:xmpmeta>", re.S)


def is_heif(path: str | os.PathLike) -> bool:
    """Whether the file starts with an ISO BMFF ``ftyp`` box of a HEIF brand."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    size = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i:i + 4] for i in range(16, size - 3, 4)}
    return bool(brands & HEIF_BRANDS)


def pillow_heif(path: str | os.PathLike):
    """The ``pillow_heif`` module with its PIL opener registered; ImageFileError naming the extra if missing."""
    try:
        import pillow_heif as module
    except ImportError:
        raise ImageFileError(f"{str(path)!r} is a HEIC/HEIF file; reading and writing HEIC needs the heif extra: "
                             f"{HEIF_EXTRA_HINT}") from None
    module.register_heif_opener()
    return module


def prepare_open(path: str | os.PathLike) -> None:
    """Make ``PIL.Image.open`` able to read ``path`` when it is a HEIF file (called before opening photos)."""
    if is_heif(path):
        pillow_heif(path)


def depth_image(path: str | os.PathLike, what: str):
    """``(heif_depth_image, xmp_packets)`` of a HEIF file's first depth auxiliary image, or ``(None, [])``.

    ``heif_depth_image`` is pillow-heif's ``HeifDepthImage`` (size known, pixels not
    yet decoded; libheif applies the primary image's rotation/mirroring to it).
    The XMP items of a HEIF file are not exposed by pillow-heif; Apple stores
    them uncompressed near the start of the file, so the first
    :data:`XMP_SCAN_BYTES` are scanned for packets.
    """
    module = pillow_heif(path)
    try:
        heif = module.open_heif(path, convert_hdr_to_8bit=False)
        depth = heif.info.get("depth_images") or []
    except Exception as exc:  # libheif errors surface as several types
        raise ImageFileError(f"{what}: cannot read HEIF container ({type(exc).__name__}: {exc})") from None
    if not depth:
        return None, []
    with open(path, "rb") as f:
        head = f.read(XMP_SCAN_BYTES)
    return depth[0], [m.group(0) for m in _XMP_PACKET.finditer(head)]
