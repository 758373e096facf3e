"""The metadata of photo files that a render carries to its output: EXIF and the ICC profile.

Read from the file's header (no pixel decoded) by :func:`pybokeh.io.read_metadata`;
written by :func:`pybokeh.io.write_image` (``metadata=``) in JPEG, PNG, TIFF, WebP
and HEIC, the EXIF as :func:`output_exif` makes it for the rendered pixels.  The
profile goes out unchanged: the render keeps the photo's primaries and transfer
curve (:mod:`pybokeh.icc`).  No file access here, so io imports this module and
not the other way round.
"""
from __future__ import annotations

from typing import NamedTuple

from PIL import Image


class ImageMetadata(NamedTuple):
    """What a photo file says beyond its pixel values, to carry to the rendered file.

    Attributes
    ----------
    exif : PIL.Image.Exif or None
        The EXIF as stored (camera, lens, exposure, date, GPS, orientation).
    icc_profile : bytes or None
        The ICC colour profile as stored.
    """

    exif: Image.Exif | None = None
    icc_profile: bytes | None = None


def output_exif(exif: Image.Exif | None, size: tuple[int, int]) -> Image.Exif | None:
    """The EXIF to write with a rendered photo of ``size`` (width, height) pixels.

    IFD0 tags (camera, date, artist, ...) and the EXIF and GPS sub-IFDs are kept;
    the orientation becomes 1 (the pixels are written as displayed), the EXIF pixel
    dimensions (if present) become ``size``, and the thumbnail (IFD1) and any tag
    that describes the source file's own pixel storage are dropped.
    """
    from .io16 import TIFF_STRUCTURE_TAGS

    if not exif:
        return None
    out = Image.Exif()
    for tag, value in exif.items():
        if tag not in TIFF_STRUCTURE_TAGS and tag not in (0x8769, 0x8825):
            out[tag] = value
    out[0x0112] = 1
    sub = dict(exif.get_ifd(0x8769))
    if sub:
        interop = dict(exif.get_ifd(0xA005)) if 0xA005 in sub else {}
        sub.pop(0xA005, None)
        if interop:
            sub[0xA005] = interop
        for tag, value in ((0xA002, size[0]), (0xA003, size[1])):
            if tag in sub:
                sub[tag] = value
        out[0x8769] = sub
    gps = dict(exif.get_ifd(0x8825))
    if gps:
        out[0x8825] = gps
    return out
