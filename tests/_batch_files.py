"""Photo files for the batch, fidelity and Ray tests: folders of small photos with depth maps,
EXIF, ICC profiles of chosen tone curves, 16-bit colour."""
from __future__ import annotations

import pathlib
import struct

import numpy as np
from PIL import Image

#: EXIF tags the tests expect to survive a render: (IFD, tag) -> value.
CAMERA_EXIF = {
    (0, 0x010F): "TestCam",                    # Make
    (0, 0x0110): "Model 7",                    # Model
    (0, 0x013B): "A. Photographer",            # Artist
    (0x8769, 0x9003): "2024:05:06 07:08:09",   # DateTimeOriginal
    (0x8769, 0xA434): "50mm F1.4",             # LensModel
    (0x8769, 0x8827): 400,                     # ISO
    (0x8825, 0x0001): "N",                     # GPSLatitudeRef
}


def camera_exif(orientation: int = 1, size: tuple[int, int] | None = None) -> Image.Exif:
    """EXIF with :data:`CAMERA_EXIF`, an orientation and (optionally) the EXIF pixel size (w, h)."""
    exif = Image.Exif()
    for (ifd, tag), value in CAMERA_EXIF.items():
        (exif if ifd == 0 else exif.get_ifd(ifd))[tag] = value
    exif[0x0112] = orientation
    if size is not None:
        exif.get_ifd(0x8769)[0xA002], exif.get_ifd(0x8769)[0xA003] = size
    return exif


def icc_profile(curve: bytes, space: bytes = b"RGB ") -> bytes:
    """A minimal ICC profile whose three tone curves are ``curve`` (a ``curv``/``para`` tag body)."""
    names = (b"rTRC", b"gTRC", b"bTRC") if space == b"RGB " else (b"kTRC",)
    table_end = 128 + 4 + 12 * len(names)
    padded = curve + b"\0" * (-len(curve) % 4)
    entries = b"".join(struct.pack(">4sII", n, table_end, len(curve)) for n in names)  # all share one curve
    data = bytearray(128)
    data[8:12] = b"\x02\x10\x00\x00"
    data[12:16] = b"mntr"
    data[16:20] = space
    data[20:24] = b"XYZ "
    data[36:40] = b"acsp"
    data += struct.pack(">I", len(names)) + entries + padded
    struct.pack_into(">I", data, 0, len(data))
    return bytes(data)


def gamma_curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))


def para_curve(ftype: int, *params: float) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", ftype, 0) + b"".join(struct.pack(">i", round(p * 65536))
                                                                     for p in params)


def table_curve(values: np.ndarray) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">I", values.size) + np.round(values * 65535).astype(">u2").tobytes()


def scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A photo (uint8) with texture and a few clipped lights, and a disparity map (uint16) with a near box."""
    y, x = np.mgrid[0:h, 0:w]
    photo = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) % 64) * 4], -1)
    photo = np.clip(photo + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
    photo[rng.integers(0, h, 6), rng.integers(0, w, 6)] = 255
    depth = np.full((h, w), 9000, np.uint16)
    depth[h // 4:3 * h // 4, w // 3:2 * w // 3] = 52000
    depth += (y * 40).astype(np.uint16)
    return photo, depth


def make_shoot(folder: pathlib.Path, rng: np.random.Generator, n: int = 12, size: tuple[int, int] = (48, 64),
               suffix: str = ".jpg") -> list[pathlib.Path]:
    """``n`` photos ``IMG_00k`` with camera EXIF and their ``IMG_00k_depth.png`` maps in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        photo, depth = scene(rng, *size)
        path = folder / f"IMG_{k:03d}{suffix}"
        options = {"quality": 92} if suffix == ".jpg" else {}
        Image.fromarray(photo).save(path, exif=camera_exif(size=(size[1], size[0])), **options)
        Image.fromarray(depth).save(folder / f"IMG_{k:03d}_depth.png")
        paths.append(path)
    return paths


def write_png16(path: pathlib.Path, image: np.ndarray, icc: bytes | None = None, exif: Image.Exif | None = None):
    """A 16-bit colour PNG written with libpng (imagecodecs) plus metadata chunks, as other tools write them."""
    import imagecodecs

    from pybokeh import io16

    data = imagecodecs.png_encode(image)
    head, rest = data[:33], data[33:]  # signature + IHDR
    extra = b""
    if icc:
        import zlib

        extra += io16._chunk(b"iCCP", b"prof\x00\x00" + zlib.compress(icc))
    if exif is not None:
        extra += io16._chunk(b"eXIf", exif.tobytes()[6:])
    path.write_bytes(head + extra + rest)
