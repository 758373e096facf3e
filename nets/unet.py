"""Pix2Pix U-Net generator (Isola et al. 2017, reference ``unet_256``).

The network is written out as an explicit encoder/decoder instead of the reference
code's recursive ``UnetSkipConnectionBlock`` so that every norm+activation pair can be
one fused :class:`~pybokeh.nets.fused_norm.InstanceNormLeakyReLU`.  It computes the
same function as the reference with ``norm='instance'`` (tested against a
re-implementation of the reference blocks in ``tests/nets/test_nets_models.py``):

* encoder level 1: ``conv`` then LeakyReLU(0.2) (no norm);
* encoder levels 2 .. L-1: ``conv`` then InstanceNorm+LeakyReLU(0.2), fused.  The
  activated tensor is both the skip and the next conv's input: the reference's
  in-place ``LeakyReLU`` rewrites the skip tensor the same way;
* encoder level L (innermost, 1×1 at the reference size): ``conv`` without norm;
* decoder level L .. 2: ``ReLU`` of the input, ``convT``, InstanceNorm+ReLU (fused,
  slope 0), dropout on the three blocks just outside the innermost one;
* decoder level 1: ``ReLU``, ``convT``, ``Tanh``.

The only reordering: the reference applies ReLU to ``cat(skip, up)`` at the start of
the next decoder block; here the ReLU of ``up`` is fused into its norm and happens
before dropout and concatenation.  ReLU is elementwise and commutes with dropout's
positive rescaling, so the result is identical.

Dropout placement follows the reference *code* (``levels - 5`` blocks outside the
innermost one: decoder levels 7, 6, 5 of ``unet_256``), not the paper's table, which
puts it on the first three decoder layers; the parameter count is the same either way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .fused_norm import InstanceNormLeakyReLU

__all__ = ["GeneratorConfig", "UNetGenerator", "levels_for_size"]

MIN_LEVELS = 2
MAX_AUTO_LEVELS = 8


def levels_for_size(size: int) -> int:
    """Number of U-Net levels for a square crop of ``size`` pixels.

    The innermost feature map is as small as the crop allows: ``size`` is divided by
    two as long as it stays an integer, up to 8 levels (the reference ``unet_256``:
    256 → 8 levels and a 1×1 bottleneck, 128 → 7, 192 → 6 with 3×3, 160 → 5 with 5×5).

    Raises
    ------
    ValueError
        If ``size`` is not a positive multiple of 32 (fewer than 5 levels would leave
        the bottleneck with too little context for depth).
    """
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or size % 32:
        raise ValueError(f"size must be a positive multiple of 32, got {size!r}")
    levels = 0
    while size % 2 == 0 and levels < MAX_AUTO_LEVELS:
        size //= 2
        levels += 1
    return levels


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a :class:`UNetGenerator`; stored with saved weights.

    Attributes
    ----------
    ngf : int
        Filters of the first encoder level; level ``i`` has ``ngf * min(2**(i-1), 8)``.
    levels : int
        Number of stride-2 levels; inputs must be multiples of ``2**levels``.
    in_channels, out_channels : int
        3 (RGB) and 1 (depth) for depth estimation.
    dropout : float
        Dropout probability of the dropout blocks (training only).
    dropout_blocks : int or None
        How many decoder blocks just outside the innermost one get dropout; ``None``
        follows the reference code, ``max(levels - 5, 0)`` (3 for ``unet_256``, 2 for
        ``unet_128``).
    """

    ngf: int = 64
    levels: int = 8
    in_channels: int = 3
    out_channels: int = 1
    dropout: float = 0.5
    dropout_blocks: int | None = None

    def __post_init__(self) -> None:
        if self.dropout_blocks is None:
            object.__setattr__(self, "dropout_blocks", max(self.levels - 5, 0))
        for name in ("ngf", "levels", "in_channels", "out_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.levels < MIN_LEVELS:
            raise ValueError(f"levels must be at least {MIN_LEVELS}, got {self.levels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.dropout_blocks, int) or self.dropout_blocks < 0:
            raise ValueError(f"dropout_blocks must be a non-negative integer, got {self.dropout_blocks!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GeneratorConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** self.levels


def _channels(ngf: int, level: int) -> int:
    """Output channels of encoder level ``level`` (1-based): 64-128-256-512-512-..."""
    return ngf * min(2 ** (level - 1), 8)


class _EncoderBlock(nn.Module):
    """4×4 stride-2 conv, then (fused) norm and activation as the level requires."""

    def __init__(self, c_in: int, c_out: int, act: str) -> None:
        super().__init__()
        # Instance norm has no affine shift, so the conv keeps its bias (as the reference).
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=True)
        self.act = act
        self.norm_act = InstanceNormLeakyReLU(c_out, negative_slope=0.2) if act == "norm_lrelu" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm_act is not None:
            return self.norm_act(x)
        if self.act == "lrelu":
            return F.leaky_relu(x, 0.2)
        return x  # innermost: raw conv output, the decoder's ReLU follows


class _DecoderBlock(nn.Module):
    """ReLU, 4×4 stride-2 transposed conv, then InstanceNorm+ReLU (+dropout) or Tanh."""

    def __init__(self, c_in: int, c_out: int, outermost: bool, dropout: float) -> None:
        super().__init__()
        self.convt = nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=True)
        self.outermost = outermost
        self.norm_act = None if outermost else InstanceNormLeakyReLU(c_out, negative_slope=0.0)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convt(x)
        if self.outermost:
            return torch.tanh(x)
        x = self.norm_act(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return x


class UNetGenerator(nn.Module):
    """Pix2Pix U-Net: RGB in [-1, 1] → one depth channel in [-1, 1] (Tanh).

    Parameters
    ----------
    ngf : int, default 64
        Filters of the first level (reference 64: 64-128-256-512-512-512-512-512).
    levels : int, default 8
        Number of stride-2 levels (8 = reference ``unet_256``, 1×1 bottleneck at 256 px).
        Use :func:`levels_for_size` to match a crop size.
    in_channels, out_channels : int, default 3 and 1
    dropout : float, default 0.5
        Dropout in ``dropout_blocks`` decoder blocks (default ``max(levels - 5, 0)`` as the
        reference code: 3 at 8 levels); active only in ``train()`` mode.
        Inference (:func:`~pybokeh.nets.inference.predict_disparity`) runs in eval mode,
        so predictions are deterministic (the reference code keeps dropout on at test time).
    dropout_blocks : int or None
    input_size : int or None
        Training crop size, kept as metadata (inference resizes to it); not needed by
        ``forward``, which accepts any multiple of ``2**levels``.

    Notes
    -----
    With the defaults the network has 54,405,505 parameters (the reference
    ``unet_256`` with one output channel).  Weights are initialised N(0, 0.02), biases 0.
    Input shape ``(N, in_channels, H, W)`` with ``H`` and ``W`` multiples of
    ``2**levels``; output ``(N, out_channels, H, W)``.
    """

    def __init__(self, ngf: int = 64, levels: int = 8, in_channels: int = 3, out_channels: int = 1,
                 dropout: float = 0.5, dropout_blocks: int | None = None, input_size: int | None = None) -> None:
        super().__init__()
        self.config = GeneratorConfig(ngf=ngf, levels=levels, in_channels=in_channels,
                                      out_channels=out_channels, dropout=dropout,
                                      dropout_blocks=dropout_blocks)
        if input_size is not None and (input_size <= 0 or input_size % self.config.multiple):
            raise ValueError(f"input_size must be a positive multiple of 2**levels = "
                             f"{self.config.multiple}, got {input_size!r}")
        self.input_size = input_size
        L = levels
        enc = []
        for level in range(1, L + 1):
            c_in = in_channels if level == 1 else _channels(ngf, level - 1)
            act = "lrelu" if level == 1 else ("none" if level == L else "norm_lrelu")
            enc.append(_EncoderBlock(c_in, _channels(ngf, level), act))
        self.encoder = nn.ModuleList(enc)
        dec = []
        # decoder[i] produces the resolution of encoder level (L - i) ... listed innermost first.
        for level in range(L, 0, -1):
            c_in = _channels(ngf, level) * (1 if level == L else 2)
            c_out = out_channels if level == 1 else _channels(ngf, level - 1)
            with_dropout = 1 < level < L and level >= L - self.config.dropout_blocks
            dec.append(_DecoderBlock(c_in, c_out, outermost=level == 1,
                                     dropout=dropout if with_dropout else 0.0))
        self.decoder = nn.ModuleList(dec)
        init_normal_(self)

    @classmethod
    def from_config(cls, config: GeneratorConfig | dict, input_size: int | None = None) -> "UNetGenerator":
        if isinstance(config, dict):
            config = GeneratorConfig.from_dict(config)
        return cls(**config.to_dict(), input_size=input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.multiple
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"x must be (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"x height and width must be multiples of 2**levels = {m}, "
                             f"got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        # skips[-1] is the innermost output: it feeds the decoder directly, not as a skip.
        y = self.decoder[0](F.relu(skips.pop()))
        for block in self.decoder[1:]:
            # relu(skip) == relu(leaky_relu(.)): what the reference's ReLU on the concat does.
            y = block(torch.cat([F.relu(skips.pop()), y], dim=1))
        return y


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Reference Pix2Pix init: conv weights N(0, ``std``), biases 0; returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif getattr(m, "weight", None) is not None and isinstance(m, InstanceNormLeakyReLU):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
