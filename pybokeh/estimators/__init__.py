"""Pluggable depth estimators behind :func:`pybokeh.estimate_depth` (``model=...``).

Every estimator maps the photo, area-averaged to the working grid
(``(h, w, 3)`` float32 RGB in [0, 1], at most 512 px on the long side), to a
disparity map on that grid in the project's convention: float32 in [0, 1],
brighter = nearer.  :func:`pybokeh.estimate_depth` then upsamples it to the photo
with the guided filter.  Choices for ``model``:

``"pix2pix"`` (default)
    The packaged Pix2Pix model (:mod:`.pix2pix`; needs the ``depth`` extra).
a path ending in ``.safetensors``
    A Pix2Pix generator written by ``pybokeh train`` (the same as ``"pix2pix"`` with
    ``weights=`` that file), so that ``--depth-model`` can name one.
``"hf:<repo id or folder>"``, a local folder with a ``config.json``, or a bare ``owner/name`` repo id
    A Hugging Face ``transformers`` depth-estimation model (:mod:`.hf`; needs the
    ``hf`` extra).  A repo id makes transformers download the weights on first use.
a path ending in ``.onnx``
    An ONNX model run by ``onnxruntime`` (:mod:`.onnx`; needs the ``onnx`` extra),
    e.g. the packaged model written by ``pybokeh export-onnx``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .normalise import normalise_metric, normalise_relative

__all__ = ["Estimator", "resolve", "PIX2PIX", "normalise_relative", "normalise_metric"]

PIX2PIX = "pix2pix"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class Estimator(Protocol):
    """What :func:`pybokeh.estimate_depth` needs from an estimator."""

    #: How messages name it, e.g. ``"packaged Pix2Pix model"``.
    name: str
    #: True for the packaged model (the CLI then says how to get better depth).
    packaged: bool

    def predict(self, rgb: np.ndarray, device: Any) -> np.ndarray:
        """``(h, w)`` float32 disparity in [0, 1] (brighter = nearer) for the grid photo ``rgb``."""


def resolve(model: Any, weights: str | Path | None = None) -> Estimator:
    """The estimator a ``model`` argument names (see the module docstring).

    ``weights`` (a generator file from ``pybokeh train``) applies to ``"pix2pix"`` only.
    """
    if isinstance(model, Path):
        model = str(model)
    if not isinstance(model, str) or not model:
        raise TypeError(f"model must be 'pix2pix', 'hf:<repo id or folder>' or a path to a .safetensors or .onnx file, "
                        f"got {model!r}")
    if weights is not None and model != PIX2PIX:
        raise ValueError("weights applies to model='pix2pix' only (the packaged architecture)")
    if model == PIX2PIX or model.lower().endswith(".safetensors"):
        from .pix2pix import Pix2PixEstimator

        return Pix2PixEstimator(weights if model == PIX2PIX else model)
    if model.lower().endswith(".onnx"):
        from .onnx import OnnxEstimator

        return OnnxEstimator(model)
    source = model[3:] if model.startswith("hf:") else model
    if model.startswith("hf:") or (Path(source) / "config.json").is_file() or (
            _REPO_ID.match(source) and not Path(source).exists()):
        from .hf import HFEstimator

        return HFEstimator(source)
    raise ValueError(f"model {model!r} is neither 'pix2pix', a generator .safetensors from pybokeh train, a .onnx "
                     f"file, a transformers model folder (with config.json) nor a Hugging Face repo id ('hf:owner/name')")
