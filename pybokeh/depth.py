"""Depth from one photo: :func:`estimate_depth` (the packaged Pix2Pix model by default).

Other estimators (Hugging Face ``transformers`` models, ONNX files) plug into the same
pipeline through :mod:`pybokeh.estimators`: they replace step 2.

Pipeline (each step is what makes a 12-megapixel photo take a fraction of a second):

1. the photo is area-averaged to a working grid of at most :data:`GRID_LONG_SIDE`
   pixels on the long side (PIL's box filter for uint8 photos), and its luma
   (ITU-R 601: 0.299 R + 0.587 G + 0.114 B) is taken at full resolution;
2. the generator predicts disparity from the grid photo resized to its training size
   (:func:`pybokeh.nets.predict_disparity`, eval mode, deterministic) and the map is
   resized back to the grid;
3. the guided filter (:mod:`pybokeh.guided_filter`) fits the disparity as a local
   linear function of the luma on the grid (after one filtering pass there, see
   :data:`GUIDED_PASSES`), and one fused pass applies the fitted coefficients, bilinearly
   interpolated, to the full-resolution luma: depth edges land on the photo's edges
   instead of the network's coarse blur.  On a CUDA device the network and the
   full-resolution pass run on the GPU; the grid statistics (a few hundred thousand
   pixels) stay on the CPU.

Only this module needs PyTorch, and it imports it on first use: ``import pybokeh``
stays torch-free.  The model file ships inside the package (safetensors, float16; see
``MODEL.md``) and is loaded once per device (cached).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .estimators.pix2pix import default_weights
from .estimators.torch_runtime import require_torch
from .inputs import as_image

__all__ = ["estimate_depth", "default_weights", "GRID_LONG_SIDE", "UPSAMPLE_MODES"]

#: Long side, in pixels, of the grid the guided filter's coefficients are computed on.
GRID_LONG_SIDE = 512
#: Window radius of the guided filter as a fraction of the grid's long side (8 px at 512):
#: wide enough to span the network's blur across an edge (4 grid px per network pixel).
RADIUS_FRACTION = 1.0 / 64.0
#: Guided-filter regularisation in squared luma units (luma in [0, 1]): edges with a
#: local luma contrast above ~0.01 carry the depth step; fainter texture does not.
EPS = 1e-4
#: Guided-filter passes: ``GUIDED_PASSES - 1`` on the grid, then the fast full-resolution
#: one.  Each pass narrows the ramp a blurry depth edge leaves on both sides of the photo
#: edge (tests/depth/test_guided_filter.py measures it); two keep the far field intact.
GUIDED_PASSES = 2
UPSAMPLE_MODES = ("guided", "bilinear")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _grid_shape(h: int, w: int) -> tuple[int, int]:
    scale = min(1.0, GRID_LONG_SIDE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _prepare(arr: np.ndarray, grid: tuple[int, int]):
    """Grid photo ``(gh, gw, 3)`` float32 in [0, 1], full-resolution luma and its scale to [0, 1]."""
    gh, gw = grid
    if arr.dtype == np.uint8:
        from PIL import Image

        pil = Image.fromarray(arr)
        # BOX = area average; reducing_gap lets PIL box-reduce by an integer factor first (2-3x faster).
        low = pil if (gh, gw) == arr.shape[:2] else pil.resize((gw, gh), Image.BOX, reducing_gap=3.0)
        low_rgb = np.asarray(low, np.float32) / np.float32(255.0)
        luma = np.array(pil.convert("L"))  # uint8 (writable copy), same weights, integer-rounded
        return low_rgb, luma, 1.0 / 255.0
    unit = arr.astype(np.float32) / np.float32(65535.0) if arr.dtype == np.uint16 else arr
    if (gh, gw) == arr.shape[:2]:
        low_rgb = np.ascontiguousarray(unit, np.float32)
    else:  # the same box filter per channel, in float
        from PIL import Image

        low_rgb = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(unit[..., c], np.float32)).resize(
            (gw, gh), Image.BOX), np.float32) for c in range(3)], axis=-1)
    luma = unit @ _LUMA
    return np.ascontiguousarray(low_rgb, np.float32), luma.astype(np.float32), 1.0


def _guided_coefficients(guide_low: np.ndarray, disp_low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Guided-filter coefficients on the grid: ``GUIDED_PASSES - 1`` filter passes, then a fit."""
    from .guided_filter import guided_filter, guided_filter_coefficients

    radius = max(1, round(max(guide_low.shape) * RADIUS_FRACTION))
    src = disp_low
    for _ in range(GUIDED_PASSES - 1):
        src = guided_filter(guide_low, src, radius, EPS)
    return guided_filter_coefficients(guide_low, src, radius, EPS)


def _guided(luma: np.ndarray, guide_low: np.ndarray, disp_low: np.ndarray, luma_scale: float) -> np.ndarray:
    """Edge-aware upsampling of the grid disparity to the full-resolution luma (CPU)."""
    from .guided_filter import apply_coefficients

    mean_a, mean_b = _guided_coefficients(guide_low, disp_low)
    return apply_coefficients(luma, mean_a, mean_b, guide_scale=luma_scale, clip=(0.0, 1.0))


def _estimate(image: Any, device: Any, upsample: str, weights: str | Path | None,
              timings: dict[str, float] | None, model: Any = "pix2pix") -> np.ndarray:
    from .estimators import resolve

    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {upsample!r}")
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None and isinstance(image, torch_mod.Tensor) and image.device.type != "cpu":
        image = image.detach().cpu()  # GPU tensors are welcome here (unlike in render's CPU backends)
    arr, _ = as_image(image)
    estimator = resolve(model, weights)
    dev = estimator.device(device)
    from .guided_filter import apply_coefficients

    t0 = time.perf_counter()
    h, w = arr.shape[:2]
    grid = _grid_shape(h, w)
    low_rgb, luma, luma_scale = _prepare(arr, grid)
    t1 = time.perf_counter()
    disp_low = _to_grid(estimator.predict(low_rgb, dev), grid)
    t2 = time.perf_counter()
    if upsample == "bilinear":  # the same bilinear taps with a = 0
        mean_a, mean_b = np.zeros_like(disp_low), disp_low
    else:
        mean_a, mean_b = _guided_coefficients(low_rgb @ _LUMA, disp_low)
    if getattr(dev, "type", "cpu") == "cuda":
        torch = require_torch()
        from .guided_filter import apply_coefficients_torch

        out = apply_coefficients_torch(torch.from_numpy(luma).to(dev), mean_a, mean_b, guide_scale=luma_scale,
                                       clip=(0.0, 1.0))
        result = np.ascontiguousarray(out.cpu().numpy(), dtype=np.float32)
    else:
        result = apply_coefficients(luma, mean_a, mean_b, guide_scale=luma_scale, clip=(0.0, 1.0))
    t3 = time.perf_counter()
    if timings is not None:
        timings.update(prepare_s=t1 - t0, network_s=t2 - t1, upsample_s=t3 - t2, total_s=t3 - t0)
    return result


def _to_grid(disp: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """An estimator's map resized (bilinear, pixel centres) to the grid, float32 in [0, 1]."""
    disp = np.asarray(disp, np.float32)
    if disp.ndim != 2 or not np.isfinite(disp).all():
        raise ValueError(f"the depth estimator returned a {disp.shape} map with non-finite values"
                         if disp.ndim == 2 else f"the depth estimator returned shape {disp.shape}, expected (h, w)")
    if disp.shape != grid:
        from PIL import Image

        disp = np.asarray(Image.fromarray(np.ascontiguousarray(disp)).resize((grid[1], grid[0]), Image.BILINEAR),
                          np.float32)
    return np.clip(disp, 0.0, 1.0)


def estimate_depth(image: Any, *, model: str = "pix2pix", device: Any = None, upsample: str = "guided",
                   weights: str | Path | None = None) -> np.ndarray:
    """Estimate a disparity-like depth map from one photo (brighter = nearer).

    Parameters
    ----------
    image : numpy.ndarray, PIL.Image.Image or torch.Tensor
        H×W×3 sRGB photo, as for :func:`pybokeh.render`: uint8 (0–255), uint16
        (0–65535) or float32/float64 in [0, 1]; PIL images in mode ``"RGB"``; torch
        tensors channels last (on any device).  Any size of at least 2 pixels.  Never modified.
    model : str
        Which estimator (see :mod:`pybokeh.estimators`): ``"pix2pix"`` (default, the
        packaged model; ``depth`` extra), ``"hf:<repo id or folder>"`` (a Hugging Face
        ``transformers`` depth-estimation model such as
        ``"hf:depth-anything/Depth-Anything-V2-Small-hf"``; ``hf`` extra; a repo id is
        downloaded by transformers on first use) or a path to a ``.onnx`` file
        (``onnx`` extra; e.g. written by ``pybokeh export-onnx``).
    device : None, str or torch.device
        Where the network and the filter run: ``None`` or ``"auto"`` (default) picks
        CUDA when PyTorch sees a GPU, else the CPU; or ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    upsample : {"guided", "bilinear"}
        ``"guided"`` (default): edge-aware fast guided filter on the photo's luma, so
        depth edges follow the photo's edges.  ``"bilinear"``: plain bilinear resize of
        the network's map (for comparison).
    weights : path, optional
        ``model="pix2pix"`` only: a generator file written by ``pybokeh train``
        (``generator.safetensors``); default: the packaged model
        (:func:`default_weights`, described in ``MODEL.md``).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 in [0, 1] at the input's resolution, brighter = nearer,
        upsampled from the estimator's map with the guided filter.  ``"pix2pix"``: the
        network's map of the photo averaged with the mirrored map of the mirrored photo
        (see :data:`pybokeh.estimators.pix2pix.FLIP_AVERAGE`), relative inverse depth, 1 at the nearest surface (the 99th
        percentile), falling towards 0 with distance; only ratios are meaningful.
        Relative (affine-invariant) outputs of other models are stretched so their 1st
        and 99th percentiles become 0 and 1; metric outputs (metres) become ``1/z``
        divided by its 99th percentile (:mod:`pybokeh.estimators`).  Pass it to
        :func:`pybokeh.render` as the ``depth`` argument (``depth_kind="disparity"``).
        Deterministic for a given device.

    Raises
    ------
    ImportError
        The estimator's extra is not installed: ``pip install "pybokeh[depth]"``
        (pix2pix), ``"pybokeh[hf]"`` or ``"pybokeh[onnx]"``.
    ValueError, TypeError
        Bad ``image`` (see :func:`pybokeh.render`), ``model``, ``device`` or ``upsample``.

    Notes
    -----
    The packaged model was trained on few real scenes (three indoor, a few staged, one
    outdoor sequence) and procedural synthetic ones; expect coarse depth, often wrong on
    people.  Its disparity is meaningful up to scale and shift.  See ``MODEL.md``.

    On the CPU the network runs with one torch thread (faster for this small network on
    a busy machine); the process-wide ``torch.set_num_threads`` value is restored on
    return, so avoid changing it from another thread during the call.
    """
    return _estimate(image, device, upsample, weights, None, model)
