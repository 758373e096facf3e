"""Deterministic depth inference with a trained generator.

:func:`predict_disparity` runs the generator in eval mode (dropout off, so the same
photo always gives the same map; the reference Pix2Pix code keeps dropout on at test
time, which makes predictions noisy) on photos of any size.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .depth_target import target_to_disparity
from .unet import UNetGenerator

__all__ = ["predict_disparity", "MODES"]

MODES = ("resize", "pad")


def _as_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"image must not be empty, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"image must be float in [0, 1] or uint8, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError("image contains NaN or infinite values")
    return np.clip(arr, 0.0, 1.0)


@torch.inference_mode()
def predict_disparity(model: UNetGenerator, image, *, mode: str = "resize", size: int | None = None,
                      device: str | torch.device | None = None) -> np.ndarray:
    """Disparity-like map of one photo: brighter = nearer.

    Parameters
    ----------
    model : UNetGenerator
        Trained generator (e.g. from :func:`~pybokeh.nets.checkpoint.load_generator`).
        Its train/eval mode is restored on return.
    image : array_like
        ``(H, W, 3)`` RGB, float in [0, 1] (uint8 0–255 also accepted), any H and W.
    mode : {"resize", "pad"}
        ``"resize"`` (default): resize the photo to the model's training size
        (``size`` × ``size``, antialiased bilinear), predict, resize the map back
        (bilinear) — the network sees the field of view it was trained on.
        ``"pad"``: keep the resolution and replicate-pad to a multiple of
        ``2**levels``; the map is cropped back.
    size : int, optional
        Network input side for ``"resize"``; defaults to ``model.input_size`` (or 256).
        Must be a multiple of ``2**levels``.
    device : str or torch.device, optional
        Defaults to the model's device.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 in [0, 1]: ``1`` is the nearest surface; the map is
        proportional to inverse depth (see :mod:`pybokeh.nets.depth_target`).
        Deterministic: the same input always gives the same output.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    img = _as_image(image)
    h, w = img.shape[:2]
    multiple = model.config.multiple
    if device is None:
        device = next(model.parameters()).device
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None].to(device) * 2.0 - 1.0
    if mode == "resize":
        side = size or model.input_size or 256
        if side % multiple:
            raise ValueError(f"size must be a multiple of 2**levels = {multiple}, got {side}")
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    else:
        ph, pw = -h % multiple, -w % multiple
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    if device == torch.device("cpu") or str(device) == "cpu":
        # Channels-last halves CPU inference time (bench/bench_nets.py); results are equal.
        x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    try:
        y = model(x)
    finally:
        model.train(was_training)
    y = y[:, :1].float()
    if mode == "resize":
        y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
    else:
        y = y[..., :h, :w]
    return np.ascontiguousarray(target_to_disparity(y[0, 0]).cpu().numpy(), dtype=np.float32)
