"""``pybokeh eval-depth`` with another way of fitting a photo to the network's square input.

    python bench/aspect_fit.py letterbox --weights pybokeh/models/pix2pix_depth.safetensors \
        --data ../shared/data/rgbd --predictor estimate-depth --json --per-image > letterbox.json

``estimate_depth`` squeezes the photo to ``size`` × ``size`` (``squeeze``, what
:func:`pybokeh.nets.predict_disparity` does in ``"resize"`` mode).  The alternatives:

``letterbox``
    resize keeping the aspect ratio (long side = ``size``), pad to the square by
    reflection (replication when the pad is wider than the picture), crop the map back;
``wide``
    a ``size`` × ``2·size`` input for photos at least 3:2 wide (``2·size`` × ``size`` for
    tall ones), so a 16:9 photo is squeezed by 1.125 instead of 1.78; others squeezed.

Every other argument is ``pybokeh eval-depth``'s; the fit replaces
``pybokeh.nets.inference.predict_disparity`` for the run (an experiment, not an option
of the library: none of these beat the squeeze on the photos, MODEL.md "Ablations").
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

import pybokeh.nets.inference as inference
from pybokeh.nets.cli import add_eval_arguments, run_eval

FITS = ("squeeze", "letterbox", "wide")
_squeeze = inference.predict_disparity


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True)


def _image(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())


def make_predictor(fit: str):
    """A drop-in for :func:`~pybokeh.nets.inference.predict_disparity` (``"resize"`` mode) with ``fit``.

    The fitted input is a multiple of the network's ``2**levels``, so the library's ``"pad"``
    mode runs the network on it as it is."""
    if fit == "squeeze":
        return _squeeze

    @torch.inference_mode()
    def predict(model, image, *, mode="resize", size=None, device=None):
        if mode != "resize":
            return _squeeze(model, image, mode=mode, size=size, device=device)
        img = inference._as_image(image)
        h, w = img.shape[:2]
        side = size or model.input_size
        x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        if fit == "wide":
            aspect = w / h
            hw = (side, 2 * side) if aspect >= 1.5 else (2 * side, side) if aspect <= 1 / 1.5 else (side, side)
            disparity = _squeeze(model, _image(_resize(x, hw)), mode="pad", device=device)
        else:  # letterbox
            ch, cw = (max(1, round(side * h / w)), side) if w >= h else (side, max(1, round(side * w / h)))
            top, left = (side - ch) // 2, (side - cw) // 2
            pads = (left, side - cw - left, top, side - ch - top)
            pad_mode = "reflect" if max(pads) < min(ch, cw) else "replicate"
            square = _image(F.pad(_resize(x, (ch, cw)), pads, mode=pad_mode))
            disparity = _squeeze(model, square, mode="pad", device=device)[top:top + ch, left:left + cw]
        y = torch.from_numpy(np.ascontiguousarray(disparity))[None, None]
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()

    return predict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit", choices=FITS)
    add_eval_arguments(parser)
    args = parser.parse_args()
    inference.predict_disparity = make_predictor(args.fit)
    return run_eval(args)


if __name__ == "__main__":
    sys.exit(main())
