"""Rendering on a Ray cluster (the ``ray`` extra: ``pip install "pybokeh[ray]"``).

Two callable classes for :meth:`ray.data.Dataset.map_batches`, each constructed
once per Ray worker (an actor), so a depth model is loaded once per worker and
then reused for every photo it renders:

:class:`RenderFiles`
    rows ``{"photo", "output", "depth"}`` (paths; ``depth`` may be None) → each
    photo rendered to its output file by :func:`pybokeh.batch.render_file`, the
    very pipeline of the single-file and batch commands (EXIF orientation,
    16-bit, ICC and EXIF carried, embedded or sibling or estimated depth, atomic
    writes): outputs are byte-identical to theirs.  Rows out: the
    :class:`pybokeh.batch.FileResult` fields.  This is what
    ``pybokeh render --ray`` runs; :class:`Cluster` drives it.
:class:`RenderImages`
    rows ``{"image"[, "depth"]}`` of pixel arrays, e.g. from
    ``ray.data.read_images`` (data on object storage) → ``"image"`` rendered by
    :func:`pybokeh.batch.render_photo`, with the ``"depth"`` column or depth
    estimated on the worker.  ``read_images`` decodes with plain Pillow: no EXIF
    orientation, 8 bits, no ICC profile or EXIF and no embedded depth, so a phone
    photo stored sideways is rendered sideways; files on a shared filesystem
    render faithfully with :class:`RenderFiles`.

Paths must mean the same file on every worker (a shared filesystem, or a single
machine).  Depth estimation runs on the GPU where a worker has one: ask for it
with ``num_gpus`` in ``map_batches`` (``pybokeh render --ray-gpus``); the
estimator then picks CUDA.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Iterator, Sequence

import numpy as np

from .batch import FileResult, Job, RenderSettings, estimate, render_photo, run_job

RAY_EXTRA_HINT = 'pip install "pybokeh[ray]"'


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the data library is the part used
    except ImportError as exc:
        raise ImportError(f"rendering on Ray needs the ray extra: {RAY_EXTRA_HINT} ({exc})") from None
    return ray


class RenderFiles:
    """``map_batches`` callable: photo files rendered to their output files (see the module docstring).

    Parameters
    ----------
    settings : RenderSettings
        How to render (``threads``: CPU threads of this worker's renderer).
    """

    def __init__(self, settings: RenderSettings) -> None:
        self.settings = settings
        _limit_threads(settings.threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        depths = batch.get("depth")
        results = [run_job(Job(str(photo), str(output), None if depths is None or _missing(depths[i]) else
                               str(depths[i])), self.settings)
                   for i, (photo, output) in enumerate(zip(batch["photo"], batch["output"]))]
        rows: dict[str, list] = {f.name: [] for f in dataclasses.fields(FileResult)}
        for result in results:
            for name in rows:
                value = getattr(result, name)
                rows[name].append("\n".join(value) if name == "warnings" else value)
        return rows


class RenderImages:
    """``map_batches`` callable: image arrays rendered (see the module docstring).

    Parameters
    ----------
    settings : RenderSettings, optional
        How to render (default: :class:`RenderSettings`'s defaults).
    **options
        Fields of :class:`RenderSettings` to change, e.g. ``blades=6``.

    Batches hold an ``"image"`` column of H×W×3 arrays (uint8, uint16, or float32 in
    [0, 1]; grey H×W and RGBA are accepted as ``read_images`` gives them) and
    optionally a ``"depth"`` column of H'×W' maps (disparity, or metres with
    ``depth_kind="depth"``); without one, depth is estimated with
    ``settings.depth_model``, the model loaded once per worker.  The batch comes
    back with ``"image"`` rendered (same shapes and dtypes) and its other columns.
    """

    def __init__(self, settings: RenderSettings | None = None, **options: Any) -> None:
        self.settings = dataclasses.replace(settings or RenderSettings(), **options)
        _limit_threads(self.settings.threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        depths = batch.get("depth")
        rendered = []
        for i, image in enumerate(batch["image"]):
            photo = _rgb(np.asarray(image))
            if depths is None:
                depth = estimate(photo, self.settings)[0]
            else:
                depth = np.asarray(depths[i])
            rendered.append(render_photo(photo, depth, self.settings))
        return {**batch, "image": rendered}


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    return image


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _limit_threads(threads: int | None) -> None:
    """Keep this worker's thread pools to its share of the node's cores (the renderer takes
    ``settings.threads`` itself; torch and BLAS read these variables when first imported)."""
    if threads is None:
        return
    import sys

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _pybokeh_identity() -> tuple[str, str]:
    import pybokeh

    return os.path.dirname(os.path.abspath(pybokeh.__file__)), pybokeh.__version__


class Cluster:
    """A Ray cluster (or a local instance) that renders batches of files with :class:`RenderFiles`.

    Parameters
    ----------
    address : str
        ``"local"``: start a Ray instance on this machine; else a Ray address
        (``"auto"``, ``"ray://head:10001"``), as ``ray.init`` takes it.
    workers : int, optional
        Ray workers (actors); default: as many as the cluster's CPUs allow at
        ``threads`` each.
    threads : int, optional
        CPU threads per worker (each worker reserves as many CPUs); default: the
        cluster's CPUs divided among ``workers`` when given, else 1.
    gpus : float
        GPUs per worker for depth estimation (0: none).
    """

    def __init__(self, address: str, workers: int | None = None, threads: int | None = None,
                 gpus: float = 0.0) -> None:
        ray = _ray()
        if os.path.exists(address):
            raise ValueError(f"--ray {address!r} is a path, not a Ray address: put --ray after the photos, "
                             f"or write --ray=ADDRESS")
        local = address == "local"
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=None if local else address, logging_level=logging.WARNING,
                     **({"include_dashboard": False} if local else {}))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the command shows its own
        for name in ("ray.data", "ray.data._internal.execution.streaming_executor"):
            logging.getLogger(name).setLevel(logging.ERROR)  # execution chatter between the progress lines
        self._check_workers(ray, local)
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.threads = threads if threads is not None else max(1, self.cpus // workers) if workers else 1
        self.workers = workers or max(1, self.cpus // self.threads)
        self.gpus = gpus
        self.address = address

    def _check_workers(self, ray, local: bool) -> None:
        """Refuse workers that would import another pybokeh than this command (Ray puts the driver's
        folder on the workers' path: started inside a source checkout they would import its
        uncompiled sources and render with the Numba fallback, not byte-identically)."""
        theirs = ray.get(ray.remote(num_cpus=0)(_pybokeh_identity).remote())
        ours = _pybokeh_identity()
        if theirs != ours if local else theirs[1] != ours[1]:
            if self._started:
                ray.shutdown()
            raise RuntimeError(f"the Ray workers import pybokeh {theirs[1]} from {theirs[0]}, this command "
                               f"{ours[1]} from {ours[0]}; run from another folder (not a pybokeh checkout) "
                               f"or install the same pybokeh on every node")

    def settings_for(self, settings: RenderSettings) -> RenderSettings:
        """``settings`` with this cluster's threads per worker (and CUDA estimation with GPUs)."""
        settings = settings.with_threads(self.threads)
        if self.gpus > 0 and settings.device is None:
            settings = dataclasses.replace(settings, device="cuda")
        return settings

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == "local" else f"the Ray cluster at {self.address}"
        gpus = f", {self.gpus:g} GPU each" if self.gpus else ""
        return f"{self.workers} Ray worker{'s' * (self.workers > 1)} × {self.threads} thread" \
               f"{'s' * (self.threads > 1)}{gpus} on {where} ({self.cpus} CPUs)"

    def run(self, jobs: Sequence[Job], settings: RenderSettings) -> Iterator[FileResult]:
        """Render ``jobs``, yielding each result as the cluster returns it; disconnects at the end."""
        ray = _ray()
        try:
            if not jobs:
                return
            rows = [{"photo": j.photo, "output": j.output, "depth": j.depth or ""} for j in jobs]
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            options: dict[str, Any] = {"num_cpus": self.threads}
            if self.gpus:
                options["num_gpus"] = self.gpus
            ds = ds.map_batches(RenderFiles, fn_constructor_kwargs={"settings": settings}, batch_size=1,
                                compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(rows))),
                                batch_format="numpy", **options)
            for row in ds.iter_rows():
                warnings = row["warnings"]
                yield FileResult(row["photo"], row["output"], row["status"], float(row["seconds"]),
                                 row["depth_source"], row["error"], warnings.split("\n") if warnings else [],
                                 bool(row["packaged_model"]))
        finally:
            if self._started:
                ray.shutdown()
