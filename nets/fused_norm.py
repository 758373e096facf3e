"""InstanceNorm followed by LeakyReLU (or ReLU, slope 0) as one fused op.

Public entry points: :func:`fused_instance_norm_leaky_relu` and the module
:class:`InstanceNormLeakyReLU` that the U-Net uses for every norm + activation pair.

Backends
--------
``"triton"``
    Fused Triton kernels (:mod:`pybokeh.nets.triton_instance_norm`): one read and
    one write per pass, statistics in float32 (float64 for float64 input), the
    backward recomputes the normalised value from x instead of storing it.
``"reference"``
    The plain PyTorch ops ``instance_norm`` + ``leaky_relu``, which are also what
    the kernels are tested against.

The default (``"auto"``) runs Triton for CUDA tensors when Triton imports, and the
reference otherwise -- also inside ``torch.compile``, where Inductor fuses the
reference ops itself.  Override it per block of code with :func:`fused_norm_backend`
or per process with the environment variable ``PYBOKEH_FUSED_NORM`` (``auto``,
``triton`` or ``reference``).  Forcing ``"triton"`` on CPU tensors works only under
the Triton interpreter (``TRITON_INTERPRET=1`` set before ``triton`` is imported),
which the tests use.  This module imports without Triton.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import numbers
import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = [
    "reference_instance_norm_leaky_relu",
    "fused_instance_norm_leaky_relu",
    "InstanceNormLeakyReLU",
    "triton_available",
    "fused_norm_backend",
    "resolve_fused_norm_backend",
]

BACKENDS = ("auto", "triton", "reference")
_SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_ENV_BACKEND = "PYBOKEH_FUSED_NORM"
_backend_override: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pybokeh_fused_norm_backend", default=None)


# --------------------------------------------------------------------------- backend choice
@functools.lru_cache(maxsize=1)
def _load_triton_kernels():
    """(module, None) when the Triton kernels import, else (None, reason)."""
    try:
        from . import triton_instance_norm
    except Exception as exc:  # ImportError, or a broken Triton install raising anything else
        return None, f"{type(exc).__name__}: {exc}"
    return triton_instance_norm, None


def triton_available() -> bool:
    """True when Triton imports, so the fused kernels can run (on CUDA, or under the interpreter)."""
    return _load_triton_kernels()[0] is not None


def _is_compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())


def _interpreter_enabled() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def fused_norm_backend(name: str) -> Iterator[None]:
    """Use backend ``name`` for fused InstanceNorm + LeakyReLU inside a ``with`` block.

    Parameters
    ----------
    name : {"auto", "triton", "reference"}
        ``"triton"`` raises at call time if Triton cannot run on the tensor.

    Examples
    --------
    >>> with fused_norm_backend("reference"):
    ...     y = model(x)
    """
    _check_backend_name(name, "name")
    token = _backend_override.set(name)
    try:
        yield
    finally:
        _backend_override.reset(token)


def _check_backend_name(name: object, arg: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"{arg} must be one of {BACKENDS}, got {name!r}")


def resolve_fused_norm_backend(x: torch.Tensor) -> str:
    """Backend (``"triton"`` or ``"reference"``) that :func:`fused_instance_norm_leaky_relu` uses for ``x`` now.

    Raises
    ------
    RuntimeError
        ``"triton"`` is forced but Triton is missing, or ``x`` is on the CPU
        without the Triton interpreter.
    """
    name = _backend_override.get()
    if name is None:
        name = os.environ.get(_ENV_BACKEND, "auto").strip().lower() or "auto"
        _check_backend_name(name, _ENV_BACKEND)
    if name == "reference":
        return "reference"
    if name == "auto":
        # Under torch.compile, Inductor fuses the reference ops into its own kernels.
        return "triton" if x.is_cuda and not _is_compiling() and triton_available() else "reference"
    kernels, reason = _load_triton_kernels()
    if kernels is None:
        raise RuntimeError(f"the triton backend was requested but Triton does not import ({reason}); "
                           "pip install 'pybokeh[triton]'")
    if not x.is_cuda and not _interpreter_enabled():
        raise RuntimeError("the triton backend needs a CUDA tensor, or the Triton interpreter "
                           "(TRITON_INTERPRET=1 set before triton is imported) for CPU tensors; "
                           f"got a tensor on {x.device}")
    return "triton"


# --------------------------------------------------------------------------- reference
def reference_instance_norm_leaky_relu(x: torch.Tensor, weight: torch.Tensor | None = None,
                                       bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                                       eps: float = 1e-5) -> torch.Tensor:
    """Plain PyTorch reference: ``leaky_relu(instance_norm(x, weight, bias, eps), negative_slope)``.

    Same op as ``F.instance_norm`` (batch statistics, biased variance), except
    that 1×1 planes are allowed: they normalise to 0, so the output is
    ``leaky_relu(bias)`` and no gradient reaches ``x``.  Arguments as in
    :func:`fused_instance_norm_leaky_relu`.
    """
    # torch.instance_norm is what F.instance_norm calls after refusing 1x1 planes.
    y = torch.instance_norm(x, weight, bias, None, None, True, 0.0, eps, torch.backends.cudnn.enabled)
    return F.leaky_relu(y, negative_slope)


# --------------------------------------------------------------------------- Triton path
class _TritonInstanceNormLeakyReLU(torch.autograd.Function):
    """Autograd wrapper around the Triton forward and backward kernels."""

    @staticmethod
    def forward(ctx, x, weight, bias, negative_slope, eps, plan):
        kernels = _load_triton_kernels()[0]
        y, mean_hi, mean_lo, rstd = kernels.forward(x, weight, bias, negative_slope, eps, plan)
        # x, not the normalised value, is saved: backward recomputes xhat from x, mean and 1/sigma.
        ctx.save_for_backward(x, weight, bias, mean_hi, mean_lo, rstd)
        ctx.negative_slope = negative_slope
        ctx.plan = plan
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, bias, mean_hi, mean_lo, rstd = ctx.saved_tensors
        kernels = _load_triton_kernels()[0]
        dx, s1, s2 = kernels.backward(dy, x, weight, bias, mean_hi, mean_lo, rstd,
                                      ctx.negative_slope, ctx.plan)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dw = s2.sum(0).to(weight.dtype) if need_w else None
        db = s1.sum(0).to(bias.dtype) if need_b else None
        return (dx if need_x else None), dw, db, None, None, None


# --------------------------------------------------------------------------- public API
def _check_args(x, weight, bias, negative_slope, eps) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must be N×C×H×W (4-D), got shape {tuple(x.shape)}")
    if x.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            continue
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor or None, got {type(p).__name__}")
        if p.shape != (x.shape[1],):
            raise ValueError(f"{name} must have shape (C,) = ({x.shape[1]},), got {tuple(p.shape)}")
        if not p.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {p.dtype}")
        if p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"negative_slope must be a real number, got {type(negative_slope).__name__}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")


def fused_instance_norm_leaky_relu(x: torch.Tensor, weight: torch.Tensor | None = None,
                                   bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                                   eps: float = 1e-5) -> torch.Tensor:
    """InstanceNorm over each (n, c) plane of an N×C×H×W tensor, then LeakyReLU.

    ``y = leaky_relu((x - mean) / sqrt(var + eps) * weight + bias, negative_slope)``
    with mean and biased variance over H×W of each plane.  Differentiable in
    ``x``, ``weight`` and ``bias`` (first order).

    Parameters
    ----------
    x : torch.Tensor
        (N, C, H, W), float16, bfloat16, float32 or float64, any strides, any
        plane size from 1×1 (a 1×1 plane normalises to 0).  Values in any range.
    weight, bias : torch.Tensor, optional
        (C,) per-channel scale and shift, on ``x``'s device.
    negative_slope : float
        Slope for negative inputs; 0 gives ReLU.  Default 0.2.
    eps : float
        Added to the variance, > 0.  Default 1e-5.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``.  Statistics are accumulated in float32
        (float64 for float64 input).

    Raises
    ------
    TypeError, ValueError
        Bad argument type, dtype, shape or device (the message names the argument).
    RuntimeError
        The ``"triton"`` backend is forced where it cannot run (see
        :func:`resolve_fused_norm_backend`).
    """
    _check_args(x, weight, bias, negative_slope, eps)
    if x.numel() > 0 and resolve_fused_norm_backend(x) == "triton":
        return _TritonInstanceNormLeakyReLU.apply(x, weight, bias, float(negative_slope), float(eps), None)
    return reference_instance_norm_leaky_relu(x, weight, bias, negative_slope, eps)


class InstanceNormLeakyReLU(nn.Module):
    """``nn.InstanceNorm2d(C, affine=affine)`` then ``LeakyReLU(negative_slope)`` in one op.

    Parameters
    ----------
    num_features : int
        Channels C of the N×C×H×W input.
    negative_slope : float
        0.2 in the U-Net encoder, 0.0 (ReLU) in the decoder.
    eps : float
        Added to the variance.
    affine : bool
        Learn a per-channel weight (init 1) and bias (init 0).
    """

    def __init__(self, num_features: int, negative_slope: float = 0.2, eps: float = 1e-5,
                 affine: bool = False) -> None:
        super().__init__()
        self.num_features = num_features
        self.negative_slope = negative_slope
        self.eps = eps
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_instance_norm_leaky_relu(x, self.weight, self.bias, self.negative_slope, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, negative_slope={self.negative_slope}, eps={self.eps}, affine={self.weight is not None}"
