"""The packaged Pix2Pix model (or a generator file from ``pybokeh train``) as an estimator."""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import numpy as np

from .torch_runtime import INSTALL_HINT, require_torch, resolve_device

__all__ = ["Pix2PixEstimator", "default_weights", "FLIP_AVERAGE"]

#: Average the network's map of the photo with the mirrored map of the mirrored photo
#: (test-time augmentation): a scene's depth does not change under a left-right flip, the
#: network's errors partly do.  AbsRel 0.106 -> 0.104 on the eval split (MODEL.md), for
#: a second pass of the small network.
FLIP_AVERAGE = True


def default_weights() -> Path:
    """Path of the packaged model file (``pybokeh/models/pix2pix_depth.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "models" / "pix2pix_depth.safetensors"


class Pix2PixEstimator:
    """Runs :func:`pybokeh.nets.predict_disparity` on the grid photo, flip-averaged.

    Parameters
    ----------
    weights : path, optional
        Generator ``.safetensors`` file; default the packaged model.
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        self.path = Path(weights) if weights is not None else default_weights()
        self.packaged = weights is None
        self.name = "packaged Pix2Pix model (indoor)" if self.packaged else f"Pix2Pix generator {self.path}"

    def device(self, device: Any):
        return resolve_device(device)

    def predict(self, rgb: np.ndarray, device: Any) -> np.ndarray:
        if not self.path.is_file():
            raise FileNotFoundError(f"depth model file {self.path} not found" + (
                " (the package was installed without its model; reinstall pybokeh)" if self.packaged else ""))
        model, _ = _load_model(str(self.path.resolve()), str(device))
        return _predict_grid(model, rgb, device)


@functools.lru_cache(maxsize=4)
def _load_model(path: str, device: str):
    require_torch()
    try:
        from ..nets.checkpoint import load_generator
    except ModuleNotFoundError as exc:  # safetensors missing
        raise ImportError(f"pybokeh.estimate_depth needs {exc.name}: {INSTALL_HINT}") from exc
    model, meta = load_generator(path, device="cpu")
    model = model.float().to(device).eval()  # the file stores float16; compute in float32
    for p in model.parameters():
        p.requires_grad_(False)
    return model, meta


@contextlib.contextmanager
def _single_thread(torch, dev):
    """Run the (128×128, 2.6 M-parameter) network on one CPU thread.

    Too small to gain from threads: on this project's 2-core machine one thread took
    21 ms (median 46 ms) against 50 ms (median 516 ms) for two when other processes
    kept the cores busy, since every parallel region waits for its slowest thread.
    The process-wide torch setting is restored afterwards.
    """
    if dev.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _predict_grid(model, low_rgb: np.ndarray, dev) -> np.ndarray:
    """The network's map on the grid (flip-averaged, see :data:`FLIP_AVERAGE`)."""
    torch = require_torch()
    from ..nets.inference import predict_disparity

    with torch.inference_mode(), _single_thread(torch, dev):
        disp_low = predict_disparity(model, low_rgb, mode="resize", device=dev)  # (gh, gw) on the CPU
        if FLIP_AVERAGE:
            mirrored = predict_disparity(model, low_rgb[:, ::-1], mode="resize", device=dev)
            disp_low = 0.5 * (disp_low + mirrored[:, ::-1])
    return disp_low
