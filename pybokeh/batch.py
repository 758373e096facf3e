"""Rendering photo files: the one per-file pipeline, and batches of files.

:func:`render_file` is the pipeline every command path runs for one photo: the
single-file ``pybokeh render photo -o out``, the batch command (in this process
or in ``--jobs`` worker processes) and the Ray workers (:mod:`pybokeh.ray_render`).
So a photo renders to the same bytes whichever way it was run.  Per photo it:

1. reads the photo in its own precision (:func:`pybokeh.io.read_photo`: EXIF
   orientation applied, 16-bit kept) and its EXIF and ICC profile;
2. takes the depth from a map file (``--depth``, or the sibling named by
   ``--depth-pattern``), from the photo itself (phones embed it), or estimates it;
3. focuses on the main subject unless told where;
4. renders in the linear light of the photo's own transfer curve (:mod:`pybokeh.icc`);
5. writes atomically, in the output's format, with the photo's EXIF (orientation
   reset to 1) and ICC profile (:func:`pybokeh.io.write_image`).

Batches: :func:`find_photos` turns files, folders and glob patterns into photos,
:func:`plan` names each output (``--out-dir``/``--name``) and its depth map,
skips outputs that exist and refuses ambiguous plans before any work, and
:func:`run` renders the jobs (in worker processes with the CPU threads divided
among them), yielding one :class:`FileResult` per photo; a failure is a result,
never the end of the batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pathlib
import signal
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from . import icc, io, phone

#: Suffixes of the photos a folder is searched for (any case).
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif", ".bmp")
#: Default output name in ``--out-dir``: the photo's stem and its own format.
DEFAULT_NAME = "{stem}_bokeh{suffix}"
#: Fields of ``--name`` and ``--depth-pattern`` patterns (see :func:`name_for`).
NAME_FIELDS = ("stem", "suffix", "ext", "name")
#: Outcomes of a file.
RENDERED, FAILED = "rendered", "failed"


@dataclass(frozen=True)
class RenderSettings:
    """How to render every photo of a run (the command's options; picklable, shared by workers).

    ``depth_source`` applies without a depth map file: ``"auto"`` uses the depth the
    photo embeds and estimates it when there is none, ``"embedded"`` requires it,
    ``"estimate"`` ignores it.  The lens and focus fields are :func:`pybokeh.render`'s
    (``focus`` in normalised disparity, or metres with ``depth_kind="depth"``;
    ``focus_xy`` a pixel; neither: the main subject).  ``quality`` None: 95 for
    lossy formats.  ``threads``: CPU threads of the renderer and the estimator
    (None: all this process may use).
    """

    depth_source: str = "auto"
    depth_model: str = "pix2pix"
    depth_kind: str = "disparity"
    depth_scale: float = 1.0
    focus: float | None = None
    focus_xy: tuple[float, float] | None = None
    focus_range: float | None = None
    max_blur: float | None = None
    f_number: float | None = None
    focal_length: float = 50.0
    sensor_width: float = 36.0
    blades: int = 0
    rotation: float = 0.0
    highlight_boost: float | None = None
    backend: str = "auto"
    threads: int | None = None
    device: str | None = None
    quality: int | None = None
    max_pixels: int = io.DEFAULT_MAX_PIXELS

    @classmethod
    def from_args(cls, args: Any) -> "RenderSettings":
        """The settings of a parsed ``pybokeh render`` command line."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def with_threads(self, threads: int | None) -> "RenderSettings":
        return dataclasses.replace(self, threads=threads)


@dataclass(frozen=True)
class Job:
    """One photo to render: its file, the output file, and a depth map file (or None)."""

    photo: str
    output: str
    depth: str | None = None
    save_depth: str | None = None


@dataclass
class FileResult:
    """What became of one photo.

    ``status`` is :data:`RENDERED` or :data:`FAILED` (then ``error`` is its one-line
    message); ``depth_source`` says where the depth came from (``"file"``,
    ``"embedded"``, ``"estimated"``); ``warnings`` are the one-line warnings it raised;
    ``packaged_model`` whether the packaged (indoor) depth model estimated it.
    """

    photo: str
    output: str
    status: str
    seconds: float
    depth_source: str = ""
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    packaged_model: bool = False


def _quiet(message: str) -> None:
    pass


# --------------------------------------------------------------------------- the per-file pipeline


def render_file(job: Job, settings: RenderSettings, progress: Callable[[str], None] = _quiet) -> FileResult:
    """Render one photo file to ``job.output``: the pipeline of the module docstring.

    Raises the reader's, the renderer's or the writer's error (``ValueError``,
    ``TypeError``, ``OSError``, ``ImportError``, ``MemoryError``) on failure;
    :func:`run_job` turns them into a :data:`FAILED` result.  Nothing is written
    unless the photo rendered; the output appears whole or not at all.
    """
    start = time.perf_counter()
    out_path = io.check_output_path(job.output)
    if settings.quality is not None:
        io.check_quality(settings.quality, io.OUTPUT_FORMATS[out_path.suffix.lower()])
    if job.save_depth:
        io.check_output_path(job.save_depth, "--save-depth file", io.DEPTH_SUFFIXES)
    progress(f"reading {job.photo}")
    metadata = io.read_metadata(job.photo, settings.max_pixels)
    photo, depth, source, packaged = photo_and_depth(job, settings, progress)
    if job.save_depth:
        progress(f"writing {job.save_depth}")
        io.write_depth(job.save_depth, depth)
    curve = _transfer_curve(metadata.icc_profile, job.photo, progress)
    out = render_photo(photo, depth, settings, curve, progress)
    progress(f"writing {job.output}")
    io.write_image(job.output, out, settings.quality, metadata=metadata)
    return FileResult(job.photo, job.output, RENDERED, time.perf_counter() - start, source,
                      packaged_model=packaged)


def photo_and_depth(job: Job, settings: RenderSettings, progress: Callable[[str], None] = _quiet):
    """``(photo, depth, source, packaged)`` of a job: the photo array and the depth to render it with.

    ``source`` is ``"file"``, ``"embedded"`` or ``"estimated"``; ``packaged`` whether
    the packaged depth model made it.
    """
    if job.depth is None:
        if settings.depth_kind != "disparity" or settings.depth_scale != 1.0:
            raise ValueError("--depth-kind depth and --depth-scale need a --depth map (or --depth-pattern); "
                             "embedded and estimated depth are rendered as disparity")
        return _embedded_or_estimated(job.photo, settings, progress)
    if job.save_depth:
        raise ValueError("--save-depth writes the embedded or estimated depth; it needs no --depth")
    if settings.depth_source != "auto":
        raise ValueError(f"--depth-source {settings.depth_source} chooses where depth comes from without a "
                         f"depth map file; drop one of them")
    photo = io.read_photo(job.photo, settings.max_pixels)
    depth, turned = io.orient_depth(io.read_depth(job.depth, settings.max_pixels),
                                    io.photo_orientation(job.photo, settings.max_pixels), photo.shape)
    progress(f"depth: {job.depth}")
    if turned:
        progress("the depth map matches the photo as stored; turned it like the photo's EXIF orientation")
    if settings.depth_scale != 1.0:
        depth = depth.astype(np.float32) * np.float32(settings.depth_scale)
    return photo, depth, "file", False


def _embedded_or_estimated(path: str, settings: RenderSettings, progress):
    if settings.depth_source == "estimate":
        photo = io.read_photo(path, settings.max_pixels)
        return (photo, *estimate(photo, settings, progress))
    try:
        found = phone.read_photo_with_depth(path, settings.max_pixels)
    except io.ImageFileError as exc:
        photo = io.read_photo(path, settings.max_pixels)  # an unreadable photo raises here, with its message
        if settings.depth_source == "embedded":
            raise
        progress(f"the embedded depth is unreadable ({exc}); estimating depth instead")
    else:
        photo = found.image
        if found.depth is not None:
            progress(f"depth: embedded in the photo ({found.describe()})")
            return photo, found.disparity(), "embedded", False
        if settings.depth_source == "embedded":
            raise ValueError(f"{path}: no embedded depth (no iPhone depth image, GDepth, XDM or Dynamic "
                             f"Depth map); use --depth-source auto or estimate, or a depth map file")
        progress("no embedded depth in the photo; estimating it")
    return (photo, *estimate(photo, settings, progress))


def estimate(photo: np.ndarray, settings: RenderSettings, progress: Callable[[str], None] = _quiet):
    """``(disparity, "estimated", packaged)``: depth estimated with ``settings.depth_model``.

    The model is loaded once per process and device (the estimators cache it).
    """
    from .depth import estimate_depth
    from .estimators import resolve

    estimator = resolve(settings.depth_model)
    h, w = photo.shape[:2]
    progress(f"depth: estimating it for {w}×{h} with the {estimator.name}")
    depth = estimate_depth(photo, model=settings.depth_model, device=settings.device)
    return depth, "estimated", bool(estimator.packaged)


def render_photo(photo: np.ndarray, depth: np.ndarray, settings: RenderSettings,
                 curve: icc.TransferCurve | None = None, progress: Callable[[str], None] = _quiet) -> np.ndarray:
    """Focus and render one photo array with its depth (steps 3–4 of the module docstring).

    Parameters
    ----------
    photo : numpy.ndarray
        H×W×3 uint8, uint16 or float32 in [0, 1], as displayed.
    depth : numpy.ndarray
        H'×W' disparity (``settings.depth_kind="disparity"``) or metric depth in metres.
    curve : TransferCurve, optional
        The transfer curve of the photo's ICC profile (None: sRGB).

    Returns
    -------
    numpy.ndarray
        The rendered photo, same shape and dtype as ``photo``.
    """
    from . import render
    from .focus import subject_focus
    from .renderer import DEFAULT_HIGHLIGHT_BOOST

    h, w = photo.shape[:2]
    s = settings
    focus_range = s.focus_range
    if s.focus is not None:
        focus = s.focus
        progress(f"focus: {_focus_units(s.depth_kind, focus)} (--focus)")
    elif s.focus_xy is not None:
        focus = tuple(s.focus_xy)
        progress(f"focus: pixel {focus[0]:g},{focus[1]:g} (--focus-xy)")
    else:
        subject = subject_focus(depth, (h, w), depth_kind=s.depth_kind)
        if s.depth_kind == "disparity":
            focus = subject.value
            focus_range = subject.focus_range if focus_range is None else focus_range
            progress(f"focus: main subject at pixel {subject.xy[0]},{subject.xy[1]}, normalised disparity "
                     f"{subject.value:.3f}, sharp band {focus_range:.3f} (choose with --focus-xy X,Y or --focus)")
        else:  # metric depth: focus on the subject's pixel, band in metres only when asked for
            focus = subject.xy
            progress(f"focus: main subject at pixel {subject.xy[0]},{subject.xy[1]} "
                     f"(choose with --focus-xy X,Y or --focus)")
    progress(f"rendering {w}×{h} ({w * h / 1e6:.1f} MP), depth {depth.shape[1]}×{depth.shape[0]} {depth.dtype}")
    return icc.render_in_own_light(photo, curve, lambda prepared: render(
        prepared, depth, focus, depth_kind=s.depth_kind, max_blur=s.max_blur,
        f_number=s.f_number, focal_length_mm=s.focal_length, sensor_width_mm=s.sensor_width,
        blades=s.blades, rotation_deg=s.rotation,
        highlight_boost=DEFAULT_HIGHLIGHT_BOOST if s.highlight_boost is None else s.highlight_boost,
        focus_range=focus_range or 0.0, backend=s.backend, threads=s.threads))


def _focus_units(depth_kind: str, value: float) -> str:
    return f"{value:g} m" if depth_kind == "depth" else f"normalised disparity {value:g}"


def _transfer_curve(profile: bytes | None, path: str, progress) -> icc.TransferCurve | None:
    try:
        curve = icc.transfer_curve(profile)
    except icc.ProfileError as exc:
        warnings.warn(f"photo {path!r}: {exc}; blurring with the sRGB curve", stacklevel=2)
        return None
    if curve is not None and not curve.srgb:
        progress("the ICC profile's transfer curve is not sRGB's: blurring in its own linear light")
    return curve


def run_job(job: Job, settings: RenderSettings) -> FileResult:
    """:func:`render_file` with every failure and warning captured in the result (for batches)."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)  # interpreter noise, not about the photo
        try:
            result = render_file(job, settings)
        except (ValueError, TypeError, RuntimeError, OSError, ImportError) as exc:
            result = FileResult(job.photo, job.output, FAILED, time.perf_counter() - start, error=str(exc))
        except MemoryError:
            result = FileResult(job.photo, job.output, FAILED, time.perf_counter() - start,
                                error="not enough memory (try fewer --jobs or --threads)")
    result.warnings = [str(w.message) for w in caught]
    return result


# --------------------------------------------------------------------------- finding photos, planning outputs


def find_photos(inputs: Sequence[str | os.PathLike]) -> list[pathlib.Path]:
    """The photos named by files, folders (their photos, not their subfolders) and glob patterns.

    Folder and pattern matches are limited to :data:`PHOTO_SUFFIXES` and skip hidden
    files; a file named explicitly is taken as it is (a missing one fails when it is
    rendered).  Order: as given, each folder or pattern sorted; duplicates once.

    Raises
    ------
    ValueError
        A folder without photos, or a pattern that matches none.
    """
    found: list[pathlib.Path] = []
    for item in inputs:
        text = os.fspath(item)
        p = pathlib.Path(text)
        if p.is_dir():
            matches = [c for c in sorted(p.iterdir()) if _is_photo(c)]
            if not matches:
                raise ValueError(f"{text!r}: no photos in this folder ({', '.join(PHOTO_SUFFIXES)})")
        elif glob.has_magic(text) and not p.exists():
            matches = [pathlib.Path(m) for m in sorted(glob.glob(text, recursive=True)) if _is_photo(pathlib.Path(m))]
            if not matches:
                raise ValueError(f"no photos match {text!r}")
        else:
            matches = [p]
        found.extend(matches)
    seen: set[str] = set()
    unique = []
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _is_photo(p: pathlib.Path) -> bool:
    return p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")


def name_for(pattern: str, photo: pathlib.Path, what: str) -> str:
    """``pattern`` filled for ``photo``: {stem} ``IMG_1``, {suffix} ``.JPG``, {ext} ``jpg``, {name} ``IMG_1.JPG``."""
    fields = {"stem": photo.stem, "suffix": photo.suffix, "ext": photo.suffix[1:].lower(), "name": photo.name}
    try:
        name = pattern.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{what} {pattern!r}: use the fields {', '.join('{' + f + '}' for f in NAME_FIELDS)} "
                         f"({type(exc).__name__}: {exc})") from None
    if not name or "/" in name or os.sep in name or name in (".", ".."):
        raise ValueError(f"{what} {pattern!r} must give a file name (no folders), got {name!r}")
    return name


@dataclass
class Plan:
    """The jobs of a batch: ``todo`` to render, ``skipped`` whose output exists already."""

    todo: list[Job]
    skipped: list[Job]


def plan(photos: Sequence[pathlib.Path], out_dir: str | os.PathLike, name: str = DEFAULT_NAME,
         depth_pattern: str | None = None, overwrite: bool = False) -> Plan:
    """Name every photo's output in ``out_dir`` (and its sibling depth map), before any work.

    Photos that are another photo's output or depth map (a folder holding both) are
    not rendered themselves.  Outputs that exist are skipped unless ``overwrite``;
    temporary files an interrupted earlier run left for them are removed.

    Raises
    ------
    ValueError
        The output folder is missing, a pattern is malformed, two photos would write
        the same output, or an output would replace its photo.
    """
    out = pathlib.Path(out_dir)
    if not out.is_dir():
        raise ValueError(f"--out-dir {os.fspath(out_dir)!r} is not an existing folder")
    entries = []
    for photo in photos:
        output = out / name_for(name, photo, "--name")
        if os.path.abspath(output) == os.path.abspath(photo):
            raise ValueError(f"the output of {photo} would replace it; choose another --out-dir or --name")
        depth = photo.parent / name_for(depth_pattern, photo, "--depth-pattern") if depth_pattern else None
        entries.append((photo, output, depth))
    produced = {os.path.abspath(o) for _, o, _ in entries} | {os.path.abspath(d) for _, _, d in entries if d}
    jobs, by_output = [], {}
    for photo, output, depth in entries:
        if os.path.abspath(photo) in produced:
            continue  # another photo's output or depth map
        key = os.path.abspath(output)
        if key in by_output:
            raise ValueError(f"{by_output[key]} and {photo} would both be written to {output}; "
                             f"use --name with more fields (e.g. {{name}})")
        by_output[key] = photo
        jobs.append(Job(str(photo), str(output), str(depth) if depth else None))
    todo, skipped = [], []
    for job in jobs:
        (skipped if pathlib.Path(job.output).exists() and not overwrite else todo).append(job)
    for job in todo:
        remove_stale_temporaries(job.output)
    return Plan(todo, skipped)


def remove_stale_temporaries(output: str | os.PathLike, before: float | None = None) -> None:
    """Delete the temporary files :func:`pybokeh.io.atomic_output` left for ``output`` when a run was
    killed outright (SIGKILL, power loss), older than ``before`` (default: now)."""
    p = pathlib.Path(output)
    cutoff = time.time() if before is None else before
    for tmp in p.parent.glob(f".{glob.escape(p.stem)}.*{glob.escape(p.suffix)}.tmp"):
        with contextlib.suppress(OSError):
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()


# --------------------------------------------------------------------------- running a batch


def cores() -> int:
    """CPU cores this process may run on."""
    from .renderer.dispatch import default_threads

    return default_threads()


def split_threads(workers: int, threads: int | None) -> int:
    """Threads per worker: ``threads`` when given, else this machine's cores divided among the workers."""
    return threads if threads is not None else max(1, cores() // max(1, workers))


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


@contextlib.contextmanager
def _thread_environment(threads: int) -> Iterator[None]:
    """Environment for worker processes started inside: thread pools of ``threads`` (torch, BLAS, numba)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
    os.environ.update({k: str(threads) for k in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides, then ends the
    # workers with SIGTERM, which unwinds the current file so its temporary file is removed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _run_one(args: tuple[Job, RenderSettings]) -> FileResult:
    return run_job(*args)


def run(jobs: Iterable[Job], settings: RenderSettings, workers: int = 1) -> Iterator[FileResult]:
    """Render ``jobs``, yielding each :class:`FileResult` as it completes.

    ``workers`` > 1 renders in that many processes (spawned: no thread pools are
    forked), each with ``settings.threads`` threads (see :func:`split_threads`).  When
    the caller stops (KeyboardInterrupt, or closing the generator), the workers are
    ended with SIGTERM; the photo each was writing leaves no file, and every output
    already written is complete.
    """
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_job(job, settings)
        return
    import multiprocessing

    threads = settings.threads or 1
    with _thread_environment(threads):
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_init_worker)
    try:
        yield from pool.imap_unordered(_run_one, [(job, settings) for job in jobs], chunksize=1)
    except BaseException:  # KeyboardInterrupt, or the caller closed the generator
        pool.terminate()   # SIGTERM: each worker unwinds, removing its temporary file
        pool.join()
        raise
    pool.close()
    pool.join()
