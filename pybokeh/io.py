"""Reading photos and depth maps from files, writing results (used by the CLI)."""
from __future__ import annotations

import os
import pathlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageFileError(ValueError):
    """A file could not be read or written as an image."""


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as H×W×3 uint8 sRGB.

    EXIF orientation is applied (the photo comes out the way viewers show
    it); grey, palette and alpha images are converted to RGB (alpha dropped).
    HEIC/HEIF needs the ``heif`` extra (``pip install "pybokeh[heif]"``); the depth
    a phone embedded comes with :func:`read_photo_with_depth`.
    """
    img = _open(path, "photo")
    try:
        img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.asarray(img, dtype=np.uint8).copy()
    except OSError as exc:  # truncated or corrupt data surfaces on decode
        raise ImageFileError(f"cannot decode photo {str(path)!r}: {exc}") from exc


#: The EXIF orientations (tag 274) as operations on an H×W array, as
#: ``ImageOps.exif_transpose`` applies them to the photo (1: as stored).
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def photo_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation of a photo file (1..8; 1 when it has none)."""
    img = _open(path, "photo")
    try:
        value = int(img.getexif().get(0x0112, 1))
    except (TypeError, ValueError):
        return 1
    return value if value in _ORIENTATIONS else 1


def orient_depth(depth: np.ndarray, orientation: int, photo_shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """Turn a depth map made from a photo's stored pixels like :func:`read_photo` turns the photo.

    Depth tools differ: some read a photo's EXIF orientation (OpenCV, viewers), some
    ignore it (plain PIL).  A depth map is taken to be in the photo's displayed
    orientation, unless the photo is rotated by 90° (orientations 5–8) and the map's
    aspect ratio matches the stored, unrotated photo and not the displayed one: then
    the map gets the photo's rotation.  Flips and 180° turns cannot be told apart
    from the map and are not applied.

    Parameters
    ----------
    depth : numpy.ndarray
        H×W depth or disparity map.
    orientation : int
        EXIF orientation of the photo (see :func:`photo_orientation`).
    photo_shape : tuple
        Shape of the photo as read by :func:`read_photo` (displayed orientation).

    Returns
    -------
    (numpy.ndarray, bool)
        The map (C-contiguous) and whether it was turned.
    """
    if orientation not in (5, 6, 7, 8) or depth.ndim != 2:
        return depth, False
    h, w = photo_shape[:2]
    dh, dw = depth.shape
    if h == w or dh == 0 or dw == 0:
        return depth, False

    def close(a: float, b: float) -> bool:
        return abs(a / b - 1.0) <= 0.05

    if close(dh / dw, w / h) and not close(dh / dw, h / w):
        return np.ascontiguousarray(_ORIENTATIONS[orientation](depth)), True
    return depth, False


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a depth or disparity map at full precision.

    16-bit PNGs come back as uint16, 8-bit images as uint8, 32-bit float TIFFs
    as float32 and ``.npy`` files as stored.  Colour images are rejected
    (a depth map has one channel).
    """
    p = pathlib.Path(path)
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ImageFileError(f"cannot read depth map {str(path)!r}: {exc}") from exc
        if arr.ndim != 2:
            raise ImageFileError(f"depth map {str(path)!r} must be 2-D, got shape {arr.shape}")
        return arr
    img = _open(path, "depth map")
    try:
        if img.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(img, dtype=np.uint16).copy()
        if img.mode in ("L", "I", "F"):
            return np.asarray(img).copy()
        if img.mode == "LA":
            return np.asarray(img.getchannel(0)).copy()
        if img.mode in ("RGB", "RGBA", "P"):
            rgb = np.asarray(img.convert("RGB"))
            if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
                return rgb[..., 0].copy()  # grey stored as RGB (common for JPEG disparity maps)
            raise ImageFileError(f"depth map {str(path)!r} is a colour image; expected one channel "
                                 f"(8- or 16-bit grey PNG, float TIFF or .npy)")
        raise ImageFileError(f"depth map {str(path)!r} has unsupported mode {img.mode!r}")
    except OSError as exc:
        raise ImageFileError(f"cannot decode depth map {str(path)!r}: {exc}") from exc


#: Output suffixes written as HEIC (needs the ``heif`` extra).
HEIF_SUFFIXES = (".heic", ".heif")


def write_image(path: str | os.PathLike, array: np.ndarray, quality: int = 95) -> None:
    """Write an H×W×3 uint8 image or an H×W uint8/uint16 map; format from the file suffix.

    ``.heic``/``.heif`` need the ``heif`` extra (pillow-heif); ``quality`` applies to JPEG and HEIC.
    """
    p = pathlib.Path(path)
    img = Image.fromarray(np.ascontiguousarray(array))  # uint16 H×W -> mode I;16
    try:
        if p.suffix.lower() in (".jpg", ".jpeg"):
            img.save(p, quality=quality, subsampling=0)
        elif p.suffix.lower() in HEIF_SUFFIXES:
            from .phone.heif import pillow_heif

            pillow_heif(p)
            img.save(p, format="HEIF", quality=quality)
        else:
            img.save(p)
    except (OSError, ValueError, KeyError) as exc:
        raise ImageFileError(f"cannot write {str(path)!r}: {exc}") from exc


def _open(path: str | os.PathLike, what: str) -> Image.Image:
    from .phone.heif import prepare_open

    prepare_open(path)  # HEIC/HEIF: register pillow-heif, or say which extra is missing
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise ImageFileError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ImageFileError(f"{what} {str(path)!r} is a directory") from None
    except PermissionError:
        raise ImageFileError(f"{what} {str(path)!r} is not readable (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageFileError(f"{what} {str(path)!r} is not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFileError(f"cannot read {what} {str(path)!r}: {exc}") from exc


def read_photo_with_depth(path: str | os.PathLike):
    """The photo and the depth its file embeds: see :func:`pybokeh.phone.read_photo_with_depth`."""
    from .phone import read_photo_with_depth as read

    return read(path)
