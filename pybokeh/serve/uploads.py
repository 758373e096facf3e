"""Uploaded files: streamed to a private temporary file within a size limit, read, and removed.

The page sends a file's bytes as the request body; nothing the client sends is
used as a file-system path.  The bytes go to a fresh temporary directory (the
readers in :mod:`pybokeh.io` work on files), are read there with the usual
pixel limit checked from the header before decoding, and the directory is
removed before the request is answered, whatever happened.  Messages name the
file by the name the browser gave it, never by the temporary path.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
import re
import tempfile
from typing import AsyncIterator, Callable, TypeVar

from ..io import ImageFileError

T = TypeVar("T")

#: Largest upload accepted by default, in bytes (a 100 MP JPEG is about 40 MB).
DEFAULT_MAX_UPLOAD_BYTES = 64 * 2**20
#: First bytes of a NumPy ``.npy`` file (depth maps may come as .npy).
NPY_MAGIC = b"\x93NUMPY"


class UploadTooLarge(ValueError):
    """The request body is over the upload limit."""


def display_name(raw: str | None, default: str = "photo") -> str:
    """A short, printable version of the name the browser gave a file (for messages and downloads only)."""
    if not raw:
        return default
    name = re.split(r"[/\\]", raw)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\"'<>`")
    return name.strip()[:80] or default


def download_stem(name: str) -> str:
    """A safe file stem for the download, from the display name (letters, digits, ``-``, ``_`` and ``.``)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return stem[:60] or "photo"


async def spool(chunks: AsyncIterator[bytes], folder: pathlib.Path, limit: int) -> pathlib.Path:
    """Write a request body to a new file in ``folder``, raising :class:`UploadTooLarge` past ``limit`` bytes."""
    from starlette.concurrency import run_in_threadpool

    path = folder / "upload"
    size = 0
    with open(path, "wb") as f:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(f"the file is over the upload limit of {limit / 2**20:g} MB")
            await run_in_threadpool(f.write, chunk)  # a slow disk does not stall other requests
    if size == 0:
        raise ImageFileError("the file is empty")
    with open(path, "rb") as f:  # .npy depth maps are recognised by their content, not a client's name
        if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
            path = path.rename(path.with_suffix(".npy"))
    return path


@contextlib.contextmanager
def private_folder(parent: str | os.PathLike | None = None):
    """A new temporary directory (mode 0700) that is removed with everything in it on exit."""
    with tempfile.TemporaryDirectory(prefix="pybokeh-serve-", dir=parent) as folder:
        yield pathlib.Path(folder)


def read_as(path: pathlib.Path, name: str, reader: Callable[[pathlib.Path], T]) -> T:
    """``reader(path)``, with the temporary path in any error message replaced by the file's display name."""
    try:
        return reader(path)
    except ImageFileError as exc:
        raise ImageFileError(str(exc).replace(str(path), name)) from None
