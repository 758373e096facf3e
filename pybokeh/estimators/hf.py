"""Hugging Face ``transformers`` depth-estimation models (``pip install "pybokeh[hf]"``).

Any model ``AutoModelForDepthEstimation`` loads works: Depth Anything (V1/V2), DPT,
GLPN, ZoeDepth, ...  Its own image processor prepares the input (resizing,
normalisation).  Outputs are converted to the project's disparity convention:

* relative models (DPT, Depth Anything ``depth_estimation_type="relative"``) predict
  affine-invariant disparity, larger = nearer: :func:`~pybokeh.estimators.normalise_relative`;
* metric models (``depth_estimation_type="metric"``, ZoeDepth, GLPN, Depth Pro) predict
  metres: :func:`~pybokeh.estimators.normalise_metric` (``1/z``, scaled so its 99th
  percentile is 1).

A repo id is fetched by transformers into its cache on first use (the user's
machine, the user's network); a local folder is read with ``local_files_only``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from .normalise import normalise_metric, normalise_relative

HF_EXTRA_HINT = 'pip install "pybokeh[hf]"'
#: ``config.model_type`` of models whose output is metric depth.
METRIC_MODEL_TYPES = {"zoedepth", "glpn", "depth_pro"}


def _transformers():
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:
        raise ImportError(f"model='hf:...' needs transformers and PyTorch: {HF_EXTRA_HINT} "
                          f"(missing: {exc.name})") from None
    return transformers


@functools.lru_cache(maxsize=2)
def _load(source: str, device: str):
    transformers = _transformers()
    local = Path(source).is_dir()
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(source, local_files_only=local)
        model = transformers.AutoModelForDepthEstimation.from_pretrained(source, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load the transformers depth model {source!r}: {str(exc).splitlines()[0]}") from None
    return processor, model.eval().to(device)


def is_metric(config: Any) -> bool:
    """Whether a model config says its output is metric depth (else relative disparity)."""
    kind = getattr(config, "depth_estimation_type", None)
    if kind is not None:
        return kind == "metric"
    return getattr(config, "model_type", "") in METRIC_MODEL_TYPES


class HFEstimator:
    """A ``transformers`` depth-estimation model by repo id or local folder."""

    packaged = False

    def __init__(self, source: str) -> None:
        self.source = source
        self.name = f"transformers model {source}"

    def device(self, device: Any):
        from .torch_runtime import resolve_device

        _transformers()
        return resolve_device(device)

    def predict(self, rgb: np.ndarray, device: Any) -> np.ndarray:
        import torch

        processor, model = _load(self.source, str(device))
        image = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
        inputs = processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            out = model(**{k: v.to(device) for k, v in inputs.items()}).predicted_depth
        values = out.reshape(out.shape[-2:]).float().cpu().numpy()
        return normalise_metric(values) if is_metric(model.config) else normalise_relative(values)
