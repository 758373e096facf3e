"""The packaged Pix2Pix model (or a generator file from ``pybokeh train``) as an estimator."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class Pix2PixEstimator:
    """Runs :func:`pybokeh.nets.predict_disparity` on the grid photo, flip-averaged.

    Parameters
    ----------
    weights : path, optional
        Generator ``.safetensors`` file; default the packaged model.
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        from .. import depth

        self.path = Path(weights) if weights is not None else depth.default_weights()
        self.packaged = weights is None
        self.name = "packaged Pix2Pix model (indoor)" if self.packaged else f"Pix2Pix generator {self.path}"

    def device(self, device: Any):
        from .. import depth

        return depth._resolve_device(device)

    def predict(self, rgb: np.ndarray, device: Any) -> np.ndarray:
        from .. import depth

        if not self.path.is_file():
            raise FileNotFoundError(f"depth model file {self.path} not found" + (
                " (the package was installed without its model; reinstall pybokeh)" if self.packaged else ""))
        model, _ = depth._load_model(str(self.path.resolve()), str(device))
        return depth._pix2pix_low(model, rgb, device)
