"""InstanceNorm followed by LeakyReLU (or ReLU, slope 0) as one fused op.

Public entry point: :func:`fused_instance_norm_leaky_relu` and the module
:class:`InstanceNormLeakyReLU` that the U-Net uses.  On CUDA tensors with Triton
available the fused Triton kernels run; everywhere else the plain PyTorch ops
(``F.instance_norm`` + ``F.leaky_relu``), which are also the reference the
kernels are tested against.

(Interface stub: the Triton path lands with the Triton issue.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def reference_instance_norm_leaky_relu(x, weight=None, bias=None, negative_slope=0.2, eps=1e-5):
    """Plain PyTorch reference: ``leaky_relu(instance_norm(x, weight, bias, eps), slope)``."""
    return F.leaky_relu(F.instance_norm(x, weight=weight, bias=bias, eps=eps), negative_slope)


def fused_instance_norm_leaky_relu(x, weight=None, bias=None, negative_slope=0.2, eps=1e-5):
    """InstanceNorm over each (n, c) plane of an N×C×H×W tensor, then LeakyReLU."""
    return reference_instance_norm_leaky_relu(x, weight, bias, negative_slope, eps)


class InstanceNormLeakyReLU(nn.Module):
    """``nn.InstanceNorm2d(C, affine=affine)`` then ``LeakyReLU(negative_slope)`` in one op."""

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
