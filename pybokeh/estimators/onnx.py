"""ONNX depth models through ``onnxruntime`` (``pip install "pybokeh[onnx]"``).

The model takes one ``N×3×H×W`` float32 image and returns one map (``N×1×h×w``,
``N×h×w`` or ``h×w``).  How to feed it and read it comes from the file's metadata
(``metadata_props``, written by ``pybokeh export-onnx``), with defaults for models
exported elsewhere (e.g. Depth Anything V2 ONNX exports):

``pybokeh.input_scale`` / ``pybokeh.input_offset``
    the input is ``rgb * scale + offset`` after ImageNet normalisation when
    ``pybokeh.normalize`` is ``imagenet`` (default), or directly when it is ``none``;
``pybokeh.input_size``
    ``H,W`` the photo is resized to (default: the model's fixed input size, else
    518×518, Depth Anything's);
``pybokeh.output``
    ``relative-disparity`` (default), ``metric-depth`` or ``pix2pix-target``
    (``(y + 1) / 2``, the packaged model's [-1, 1] target);
``pybokeh.flip_average``
    ``1`` to average with the mirrored prediction of the mirrored photo.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from .normalise import normalise_metric, normalise_relative

ONNX_EXTRA_HINT = 'pip install "pybokeh[onnx]"'
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
DEFAULT_SIZE = (518, 518)
OUTPUTS = ("relative-disparity", "metric-depth", "pix2pix-target")


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"an .onnx depth model needs onnxruntime: {ONNX_EXTRA_HINT}") from None
    return onnxruntime


@functools.lru_cache(maxsize=2)
def _session(path: str, device: str):
    ort = _ort()
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ValueError(f"cannot load ONNX model {path!r}: {str(exc).splitlines()[0]}") from None


class OnnxEstimator:
    """An ONNX depth model file."""

    packaged = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"ONNX model {self.path}"

    def device(self, device: Any) -> str:
        _ort()
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model file {self.path} not found")
        dev = "cpu" if device in (None, "auto") else str(device)
        if not (dev == "cpu" or dev.startswith("cuda")):
            raise ValueError(f"device must be None, 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        return dev

    def settings(self, session) -> dict:
        """Input/output conventions from the file's metadata, with the defaults above."""
        meta = session.get_modelmeta().custom_metadata_map
        shape = session.get_inputs()[0].shape
        if "pybokeh.input_size" in meta:
            size = tuple(int(v) for v in meta["pybokeh.input_size"].split(","))
        elif len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[2:]):
            size = (shape[2], shape[3])
        else:
            size = DEFAULT_SIZE
        out = {"size": size, "normalize": meta.get("pybokeh.normalize", "imagenet"),
               "scale": float(meta.get("pybokeh.input_scale", "1")), "offset": float(meta.get("pybokeh.input_offset", "0")),
               "output": meta.get("pybokeh.output", "relative-disparity"),
               "flip": meta.get("pybokeh.flip_average", "0") == "1"}
        if out["output"] not in OUTPUTS or out["normalize"] not in ("imagenet", "none"):
            raise ValueError(f"{self.path}: unknown pybokeh.output {out['output']!r} or pybokeh.normalize "
                             f"{out['normalize']!r} in the model's metadata")
        return out

    def predict(self, rgb: np.ndarray, device: Any) -> np.ndarray:
        from PIL import Image

        session = _session(str(self.path.resolve()), str(device))
        s = self.settings(session)
        h, w = s["size"]
        x = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c], np.float32)).resize(
            (w, h), Image.BILINEAR), np.float32) for c in range(3)], axis=-1)
        if s["normalize"] == "imagenet":
            x = (x - IMAGENET_MEAN) / IMAGENET_STD
        x = x * np.float32(s["scale"]) + np.float32(s["offset"])
        batch = x.transpose(2, 0, 1)[None].astype(np.float32)
        if s["flip"]:
            batch = np.concatenate([batch, batch[..., ::-1]], axis=0)
        name = session.get_inputs()[0].name
        y = np.asarray(session.run(None, {name: np.ascontiguousarray(batch)})[0], np.float32)
        y = y.reshape(batch.shape[0], *y.shape[-2:])
        if s["output"] == "pix2pix-target":  # to disparity first, then average (as the torch path does)
            y = np.clip((y + 1.0) * 0.5, 0.0, 1.0)
        y = 0.5 * (y[0] + y[1][:, ::-1]) if s["flip"] else y[0]
        if s["output"] == "pix2pix-target":
            values = y
        elif s["output"] == "metric-depth":
            values = normalise_metric(y)
        else:
            values = normalise_relative(y)
        return np.asarray(Image.fromarray(np.ascontiguousarray(values, np.float32)).resize(
            (rgb.shape[1], rgb.shape[0]), Image.BILINEAR), np.float32)
