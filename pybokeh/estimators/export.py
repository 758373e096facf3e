"""``pybokeh export-onnx``: the packaged Pix2Pix generator as an ONNX file.

The file holds the network alone (``N×3×128×128`` float32 in [-1, 1] → ``N×1×128×128``
in [-1, 1]); its ``metadata_props`` tell :class:`~pybokeh.estimators.onnx.OnnxEstimator`
how to feed and read it, so ``estimate_depth(photo, model="pix2pix.onnx")`` runs the
same pipeline as ``model="pix2pix"`` without PyTorch.  Exporting needs PyTorch (the
``depth`` extra) and the ``onnx`` package (the ``onnx`` extra).
"""
from __future__ import annotations

import warnings
from pathlib import Path

#: ONNX opset of the export (onnxruntime ≥ 1.14 runs it).
OPSET = 17


def export_onnx(path: str | Path, weights: str | Path | None = None) -> Path:
    """Write the Pix2Pix generator (default: the packaged one) to ``path`` as ONNX; returns the path."""
    from .onnx import ONNX_EXTRA_HINT
    from .pix2pix import FLIP_AVERAGE, default_weights
    from .torch_runtime import require_torch

    torch = require_torch()
    try:
        import onnx
    except ImportError:
        raise ImportError(f"export-onnx needs the onnx package: {ONNX_EXTRA_HINT}") from None
    from ..nets.checkpoint import load_generator

    src = Path(weights) if weights is not None else default_weights()
    if not src.is_file():
        raise FileNotFoundError(f"generator file {src} not found")
    model, meta = load_generator(src, device="cpu")
    model = model.float().eval()
    side = int(model.input_size or meta.get("input_size") or 256)
    out = Path(path)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"output {str(out)!r} must end in .onnx")
    example = torch.zeros(1, 3, side, side)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on the shape checks, constant for a fixed size
            torch.onnx.export(model, (example,), str(tmp), input_names=["image"], output_names=["target"],
                              dynamic_axes={"image": {0: "batch"}, "target": {0: "batch"}}, opset_version=OPSET,
                              dynamo=False)
        proto = onnx.load(str(tmp))
        props = {"pybokeh.normalize": "none", "pybokeh.input_scale": "2", "pybokeh.input_offset": "-1",
                 "pybokeh.input_size": f"{side},{side}", "pybokeh.output": "pix2pix-target",
                 "pybokeh.flip_average": "1" if FLIP_AVERAGE else "0", "pybokeh.source": src.name}
        for key, value in props.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
