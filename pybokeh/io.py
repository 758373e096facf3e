"""Reading photos and depth maps from files, writing results (used by the CLI).

Files are untrusted input: every failure is an :class:`ImageFileError` (a
``ValueError``) with a one-line message naming the file.  Images larger than
``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`) are rejected from their
header, before any pixel is decoded, so a small file that decodes to gigabytes
(a "decompression bomb") costs nothing.  Outputs are written atomically: to a
temporary file in the destination folder, renamed over the destination only
once complete, so a failed or interrupted write leaves any earlier file intact
and no partial file behind.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
import threading
import warnings
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .imagefile import ORIENTATIONS, ImageFileError
from .metadata import ImageMetadata, output_exif

#: Largest image (width × height) read by default: 120 megapixels, enough for
#: 100 MP cameras and panoramas.  Raise it per call (``max_pixels``) or with
#: the CLI's ``--max-pixels``.
DEFAULT_MAX_PIXELS = 120_000_000


def read_photo(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a photo as an H×W×3 array, in the file's own precision.

    EXIF orientation is applied (the photo comes out the way viewers show
    it).  8-bit images (RGB, grey, palette, CMYK, ...; alpha dropped) give
    uint8; 16-bit PNG/TIFF gives uint16: grey (mode ``I;16``, or ``I`` holding
    0–65535) always, colour (RGB, RGBA, grey+alpha PNG) through the ``16bit``
    extra (``pip install "pybokeh[16bit]"``, imagecodecs; without it Pillow
    reads them as 8-bit and a warning says so); a 32-bit float TIFF (mode ``F``)
    gives float32 and must hold values in [0, 1].  Grey photos come back with
    three equal channels.  Values are the file's code values: the transfer
    curve of its ICC profile (:func:`read_metadata`) is not applied here.
    HEIC/HEIF needs the ``heif`` extra (``pip install "pybokeh[heif]"``); the
    depth a phone embedded in the file comes with :func:`read_photo_with_depth`.

    Raises
    ------
    ImageFileError
        Unreadable, corrupt or unsupported file, or more than ``max_pixels`` pixels.
    """
    img = _open(path, "photo", max_pixels, decode=False)
    if _deep_colour(img):
        with img:
            deep = _read_deep_colour(path, img)
        if deep is not None:
            return deep
        img = _open(path, "photo", max_pixels, decode=False)
    _decode(img, path, "photo")
    try:
        img = ImageOps.exif_transpose(img)
        mode = img.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            grey = np.asarray(img)
            if grey.size and (int(grey.min()) < 0 or int(grey.max()) > 65535):
                raise ImageFileError(f"photo {str(path)!r} holds 32-bit integers outside 0..65535; "
                                     f"save it as 8- or 16-bit")
            grey = grey.astype(np.uint16)
        elif mode == "F":
            grey = np.asarray(img, dtype=np.float32)
            lo, hi = (float(grey.min()), float(grey.max())) if grey.size else (0.0, 0.0)
            if not (np.isfinite(lo) and np.isfinite(hi) and 0.0 <= lo and hi <= 1.0):
                raise ImageFileError(f"photo {str(path)!r} is a float image with values in [{lo:g}, {hi:g}]; "
                                     f"float photos must hold sRGB values in [0, 1]")
        else:
            if mode != "RGB":
                img = img.convert("RGB")
            return np.asarray(img, dtype=np.uint8).copy()
        return np.repeat(grey[..., None], 3, axis=2)
    except (OSError, ValueError) as exc:  # truncated or corrupt data surfaces on decode
        if isinstance(exc, ImageFileError):
            raise
        raise ImageFileError(f"cannot decode photo {str(path)!r}: {exc}") from exc


def _deep_colour(img: Image.Image) -> bool:
    """Whether Pillow would read this PNG/TIFF's colour at 8 bits although the file has 16."""
    if img.format == "PNG" and img.mode in ("RGB", "RGBA", "LA") and img.tile:
        return str(img.tile[0][3]).split(",")[0].strip("('\" ").endswith(";16B")
    if img.format == "TIFF" and img.mode in ("RGB", "RGBA"):
        bits = img.tag_v2.get(258, (8,))
        return img.tag_v2.get(262) == 2 and max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def _read_deep_colour(path: str | os.PathLike, img: Image.Image) -> np.ndarray | None:
    """A 16-bit colour PNG/TIFF as H×W×3 uint16, oriented; None (after a warning) without the extra."""
    from . import io16

    if io16.imagecodecs() is None:
        warnings.warn(f"photo {str(path)!r} has 16 bits per colour channel; read at 8 bits "
                      f"(for 16-bit output: {io16.EXTRA_HINT})", stacklevel=3)
        return None
    try:
        with open(path, "rb") as f:
            array = io16.decode(f.read(), img.format)
    except (OSError, ValueError) as exc:
        raise ImageFileError(f"cannot decode photo {str(path)!r}: {exc}") from None
    w, h = (img.tag_v2.get(256), img.tag_v2.get(257)) if img.format == "TIFF" else img.size  # as stored
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[:2] != (h, w) or array.shape[2] not in (2, 3, 4) or array.dtype not in (np.uint8, np.uint16):
        raise ImageFileError(f"cannot decode photo {str(path)!r}: decoded {array.shape} {array.dtype}, "
                             f"expected {h}×{w} colour")
    array = np.repeat(array[..., :1], 3, axis=2) if array.shape[2] == 2 else array[..., :3]  # alpha dropped
    array = array.astype(np.uint16) if array.dtype == np.uint8 else array
    turn = ORIENTATIONS.get(_orientation_of(img))
    return np.ascontiguousarray(turn(array) if turn else array)


def _orientation_of(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1))
    except (TypeError, ValueError, OSError, SyntaxError):
        return 1
    return value if value in ORIENTATIONS else 1


def photo_orientation(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The EXIF orientation of a photo file (1..8; 1 when it has none)."""
    with _open(path, "photo", max_pixels, decode=False) as img:
        return _orientation_of(img)


def read_metadata(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageMetadata:
    """The EXIF and ICC profile of a photo file, read from its header (no pixel is decoded).

    Malformed EXIF is left out with a warning (the photo stays usable); the profile is
    kept as stored.  PNG EXIF stored after the image data is not seen.
    """
    with _open(path, "photo", max_pixels, decode=False) as img:
        return _metadata_of(img, path)


def _metadata_of(img: Image.Image, path) -> ImageMetadata:
    icc = img.info.get("icc_profile") or None
    try:
        if img.format == "TIFF":   # TIFF: the EXIF tags live in the image's own directory
            exif = img.getexif()
        else:
            exif = Image.Exif()
            raw = img.info.get("exif")
            if raw:
                exif.load(raw)
        if len(exif):
            exif.get_ifd(0x8769), exif.get_ifd(0x8825)  # parse the sub-IFDs now, while the file is at hand
    except Exception as exc:  # noqa: BLE001 - Pillow's EXIF parser raises many types on bad data
        warnings.warn(f"photo {str(path)!r}: unreadable EXIF left out ({type(exc).__name__}: {exc})", stacklevel=3)
        exif = None
    return ImageMetadata(exif if exif else None, bytes(icc) if icc else None)


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
        return np.ascontiguousarray(ORIENTATIONS[orientation](depth)), True
    return depth, False


def read_depth(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a depth or disparity map at full precision.

    16-bit PNGs come back as uint16, 8-bit images as uint8, 32-bit float TIFFs
    as float32 and ``.npy`` files as stored.  Colour images are rejected
    (a depth map has one channel), and so are maps of more than
    ``max_pixels`` pixels.
    """
    p = pathlib.Path(path)
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False, mmap_mode="r")  # header only, until the size is checked
        except FileNotFoundError:
            raise ImageFileError(f"depth map {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise ImageFileError(f"cannot read depth map {str(path)!r}: {exc}") from exc
        if arr.ndim != 2:
            raise ImageFileError(f"depth map {str(path)!r} must be 2-D, got shape {arr.shape}")
        _check_pixels(arr.shape[1], arr.shape[0], path, "depth map", max_pixels)
        try:
            return np.array(arr)
        except (OSError, ValueError) as exc:
            raise ImageFileError(f"cannot read depth map {str(path)!r}: {exc}") from exc
    img = _open(path, "depth map", max_pixels)
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


#: Output formats by file suffix (the formats the CLI writes).
OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
                  ".webp": "WEBP", ".bmp": "BMP", ".heic": "HEIF", ".heif": "HEIF"}
#: Formats that take a quality setting, 1 (smallest) to 100 (best).
LOSSY_FORMATS = ("JPEG", "WEBP", "HEIF")


def check_output_path(path: str | os.PathLike, what: str = "output",
                      suffixes: tuple[str, ...] | None = None) -> pathlib.Path:
    """Check, before any work, that ``path`` can be written: a known suffix, an existing writable folder.

    ``suffixes`` lists the accepted suffixes (default: :data:`OUTPUT_FORMATS`).
    Raises :class:`ImageFileError` naming the problem.
    """
    p = pathlib.Path(path)
    allowed = tuple(OUTPUT_FORMATS) if suffixes is None else suffixes
    if p.suffix.lower() not in allowed:
        raise ImageFileError(f"{what} {str(path)!r} has an unknown file type; use one of {', '.join(allowed)}")
    folder = p.parent if str(p.parent) else pathlib.Path(".")
    if not folder.is_dir():
        raise ImageFileError(f"{what} {str(path)!r}: the folder {str(folder)!r} does not exist")
    if p.is_dir():
        raise ImageFileError(f"{what} {str(path)!r} is a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageFileError(f"{what} {str(path)!r}: the folder {str(folder)!r} is not writable")
    if p.exists() and not os.access(p, os.W_OK):
        raise ImageFileError(f"{what} {str(path)!r} exists and is not writable")
    return p


def check_quality(quality: int, fmt: str | None = None) -> int:
    """A quality setting for a lossy format: an int in 1..100 (``fmt`` one of :data:`LOSSY_FORMATS`).

    ``fmt`` (a value of :data:`OUTPUT_FORMATS`) given and lossless (PNG, TIFF, BMP):
    a quality is refused, since it would change nothing.
    """
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise TypeError(f"quality must be an int in 1..100, got {type(quality).__name__}")
    if fmt is not None and fmt not in LOSSY_FORMATS:
        raise ValueError(f"quality applies to JPEG, WebP and HEIC outputs; {fmt} is lossless")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must lie in 1..100 (JPEG, WebP, HEIC), got {quality}")
    return int(quality)


#: Quality of lossy outputs when none is given.
DEFAULT_QUALITY = 95


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any failure the temporary file is removed and an existing ``path`` is
    left as it was.  A new file gets the permissions the umask gives; a
    replaced one keeps its own.
    """
    p = pathlib.Path(path)
    folder = p.parent if str(p.parent) else pathlib.Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix + ".tmp", dir=folder)
    except OSError as exc:
        raise ImageFileError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = pathlib.Path(tmp_name)
    try:
        yield tmp
        try:
            mode = p.stat().st_mode & 0o7777 if p.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
            os.replace(tmp, p)
        except OSError as exc:
            raise ImageFileError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_image(path: str | os.PathLike, array: np.ndarray, quality: int | None = None, *,
                metadata: ImageMetadata | None = None) -> None:
    """Write an image atomically; the format comes from the file suffix.

    Parameters
    ----------
    path : path-like
        Output file: ``.jpg``/``.jpeg``, ``.png``, ``.tif``/``.tiff``, ``.webp``,
        ``.bmp``, or ``.heic``/``.heif`` (the ``heif`` extra, pillow-heif).
    array : numpy.ndarray
        H×W×3 (uint8, uint16 or float32 in [0, 1]) or an H×W map (uint8, uint16
        or float32).  An H×W×3 image whose channels are all equal is written as
        grey.  PNG and TIFF keep 16 bits (uint16, and float32 rounded to
        16 bits), grey and colour; the other formats take 8 bits, rounded.
        An H×W float32 map to TIFF stays float32.
    quality : int, optional
        1–100 for JPEG, WebP and HEIC (default :data:`DEFAULT_QUALITY`);
        refused for lossless formats.
    metadata : pybokeh.metadata.ImageMetadata, optional
        From :func:`read_metadata` of the source photo: its EXIF goes
        out as :func:`pybokeh.metadata.output_exif` makes it (orientation 1) and its ICC profile
        unchanged, in JPEG, PNG, TIFF, WebP and HEIC (BMP carries none).
    """
    p = check_output_path(path)
    fmt = OUTPUT_FORMATS[p.suffix.lower()]
    options = {}
    if fmt in LOSSY_FORMATS:
        options["quality"] = DEFAULT_QUALITY if quality is None else check_quality(quality, fmt)
    elif quality is not None:
        check_quality(quality, fmt)
    a = _storable(np.asarray(array), fmt)
    if metadata is not None:
        exif = output_exif(metadata.exif, (a.shape[1], a.shape[0]))
    else:
        exif = None
    icc = metadata.icc_profile if metadata is not None else None
    if a.ndim == 3 and a.dtype == np.uint16:  # 16-bit colour: Pillow has no such mode
        from . import io16

        data = io16.encode_png(a, icc, exif.tobytes()[6:] if exif else None) if fmt == "PNG" else \
            io16.encode_tiff(a, icc, exif)
        with atomic_output(p) as tmp:
            try:
                tmp.write_bytes(data)
            except OSError as exc:
                raise ImageFileError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
        return
    img = Image.fromarray(a)
    if fmt == "JPEG" and img.mode == "RGB":
        options["subsampling"] = 0
    if fmt != "BMP":
        if icc:
            options["icc_profile"] = icc
        if exif:
            options["exif"] = exif.tobytes()  # bytes: Pillow's TIFF writer re-reads them
    if fmt == "HEIF":
        from .phone.heif import pillow_heif

        pillow_heif(p)  # registers the HEIF writer, or names the heif extra
    if fmt == "JPEG" and len(options.get("exif", b"")) > 65533:  # one APP1 segment holds at most this
        warnings.warn(f"{str(path)!r}: the EXIF ({len(options['exif'])} bytes) is too large for JPEG; left out",
                      stacklevel=2)
        del options["exif"]
    with atomic_output(p) as tmp:
        try:
            img.save(tmp, format=fmt, **options)
        except (OSError, ValueError, KeyError) as exc:
            raise ImageFileError(f"cannot write {str(path)!r}: {exc}") from exc


#: Suffixes of depth outputs (see :func:`write_depth`).
DEPTH_SUFFIXES = (".png", ".tif", ".tiff", ".npy")


def write_depth(path: str, disparity) -> None:
    """Write a [0, 1] disparity map atomically: 16-bit PNG (``.png``), float32 TIFF or ``.npy``."""
    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in DEPTH_SUFFIXES:
        raise ValueError(f"depth output {path!r} must end in .png (16-bit), .tif/.tiff (float32) or .npy")
    if suffix == ".png":
        write_image(path, np.round(np.clip(disparity, 0.0, 1.0) * 65535.0).astype(np.uint16))
    elif suffix in (".tif", ".tiff"):
        write_image(path, np.asarray(disparity, np.float32))
    else:
        check_output_path(path, "depth output", DEPTH_SUFFIXES)
        with atomic_output(path) as tmp:
            try:
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(disparity, np.float32), allow_pickle=False)
            except OSError as exc:
                raise ImageFileError(f"cannot write {path!r}: {exc.strerror or exc}") from exc


def _storable(a: np.ndarray, fmt: str) -> np.ndarray:
    """The array as ``fmt`` can store it (see :func:`write_image`)."""
    if a.ndim == 3 and a.shape[2] == 3 and np.array_equal(a[..., 0], a[..., 1]) and \
            np.array_equal(a[..., 0], a[..., 2]):
        a = a[..., 0]
    deep = fmt in ("PNG", "TIFF")
    if a.dtype == np.float32 or a.dtype == np.float64:
        if a.ndim == 2 and fmt == "TIFF":
            return np.ascontiguousarray(a, dtype=np.float32)  # mode F
        a = np.round(np.clip(a, 0.0, 1.0) * 65535.0).astype(np.uint16)
    if a.dtype == np.uint16 and not deep:
        a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # rounded to 8 bits
    if a.dtype not in (np.uint8, np.uint16):
        raise ImageFileError(f"cannot write an image of dtype {a.dtype}")
    return np.ascontiguousarray(a)


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_pixels(width: int, height: int, path, what: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageFileError(f"{what} {str(path)!r} is {width}×{height} ({width * height:,} pixels), over the "
                             f"limit of {max_pixels:,}; raise the limit (--max-pixels) if it is genuine")


# Pillow's own decompression-bomb check (a warning above ~89 MP, an error above
# ~179 MP) is replaced by max_pixels; lifting it is a process-wide setting, so
# opens that need it take turns.
_PIL_LIMIT_LOCK = threading.Lock()


def _open(path: str | os.PathLike, what: str, max_pixels: int = DEFAULT_MAX_PIXELS,
          decode: bool = True) -> Image.Image:
    """Open an image, check its size from the header, then (``decode``) decode it."""
    from .phone.heif import prepare_open

    prepare_open(path)  # HEIC/HEIF: register pillow-heif, or say which extra is missing
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
                with _PIL_LIMIT_LOCK:
                    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                    try:
                        img = Image.open(path)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
            else:
                img = Image.open(path)
            _check_pixels(img.width, img.height, path, what, max_pixels)
    except ImageFileError:
        raise
    except Image.DecompressionBombError:
        raise ImageFileError(f"{what} {str(path)!r} is over the limit of {max_pixels:,} pixels; raise the limit "
                             f"(--max-pixels) if it is genuine") from None
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
    if decode:
        _decode(img, path, what)
    return img


def _decode(img: Image.Image, path: str | os.PathLike, what: str) -> None:
    """Decode an image opened by :func:`_open` (its size already checked)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Image.DecompressionBombError:
        raise ImageFileError(f"{what} {str(path)!r} is over Pillow's pixel limit") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFileError(f"cannot read {what} {str(path)!r}: {exc}") from exc
