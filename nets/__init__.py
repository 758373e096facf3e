"""Pix2Pix depth networks and training, installed as ``pybokeh.nets``.

Needs PyTorch (``pip install "pybokeh[depth]"``).  Importing this package does not
import torch; the names below load on first use, so ``pybokeh --help`` and
``import pybokeh`` work without it.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "fused_instance_norm_leaky_relu": "fused_norm",
    "InstanceNormLeakyReLU": "fused_norm",
    "reference_instance_norm_leaky_relu": "fused_norm",
    "triton_available": "fused_norm",
    "fused_norm_backend": "fused_norm",
    "resolve_fused_norm_backend": "fused_norm",
}


def __getattr__(name: str):
    if name in _LAZY:
        try:
            module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        except ModuleNotFoundError as exc:
            if exc.name == "torch":
                raise ImportError(
                    f"pybokeh.nets.{name} needs PyTorch: pip install 'pybokeh[depth]'"
                ) from exc
            raise
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
