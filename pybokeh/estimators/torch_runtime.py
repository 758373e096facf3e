"""PyTorch for the estimators that need it: the import with an install hint, and devices."""
from __future__ import annotations

from typing import Any

__all__ = ["INSTALL_HINT", "require_torch", "resolve_device"]

INSTALL_HINT = 'pip install "pybokeh[depth]"'


def require_torch():
    """The ``torch`` module, or ImportError saying which extra installs it."""
    try:
        import torch
    except ModuleNotFoundError as exc:
        raise ImportError(f"pybokeh.estimate_depth needs PyTorch: {INSTALL_HINT}") from exc
    return torch


def resolve_device(device: Any):
    """``estimate_depth``'s ``device`` as a ``torch.device``: None/"auto" picks CUDA when torch sees a GPU."""
    torch = require_torch()
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be a CPU or CUDA device, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but PyTorch sees no CUDA device; use device='cpu' or None")
    return dev
