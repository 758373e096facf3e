"""70×70 PatchGAN discriminator conditioned on the photo (Pix2Pix ``n_layers_D = 3``).

Layer for layer the reference ``NLayerDiscriminator`` with instance norm:
C64 (stride 2, no norm) - C128 (stride 2) - C256 (stride 2) - C512 (stride 1) - 1-channel
conv (stride 1), all 4×4 with padding 1, LeakyReLU 0.2.  For a 256×256 input it
returns 30×30 logits, each seeing a 70×70 patch of the photo+depth pair.
"""
from __future__ import annotations

import torch
from torch import nn

from .fused_norm import InstanceNormLeakyReLU
from .unet import init_normal_

__all__ = ["PatchDiscriminator", "receptive_field"]


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field in pixels of one output logit (70 for ``n_layers = 3``)."""
    # Layers: n_layers stride-2 convs, one stride-1 conv, the stride-1 output conv; all 4×4.
    strides = [2] * n_layers + [1, 1]
    rf, jump = 1, 1
    for s in strides:
        rf += (4 - 1) * jump
        jump *= s
    return rf


class PatchDiscriminator(nn.Module):
    """PatchGAN on ``cat(photo, depth)``: one real/fake logit per overlapping patch.

    Parameters
    ----------
    in_channels : int, default 4
        Photo channels + depth channels (3 + 1).
    ndf : int, default 64
        Filters of the first layer; layer ``n`` has ``ndf * min(2**n, 8)``.
    n_layers : int, default 3
        Stride-2 layers; 3 gives the 70×70 receptive field.
    norm : {"instance", "none"}
        ``"none"`` keeps the geometry without normalisation (useful to measure the
        receptive field: instance norm couples every pixel through its statistics).

    Notes
    -----
    ``forward(photo, depth)`` takes ``(N, 3, H, W)`` and ``(N, 1, H, W)`` in [-1, 1] and
    returns logits ``(N, 1, H/8 - 2, W/8 - 2)`` for ``n_layers = 3`` (30×30 at 256).
    """

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers!r}")
        self.in_channels, self.ndf, self.n_layers, self.norm = in_channels, ndf, n_layers, norm

        def norm_act(c: int) -> nn.Module:
            if norm == "instance":
                return InstanceNormLeakyReLU(c, negative_slope=0.2)
            return nn.LeakyReLU(0.2)

        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), norm_act(ndf * mult)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), norm_act(ndf * mult)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, photo: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        if photo.shape[0] != depth.shape[0] or photo.shape[-2:] != depth.shape[-2:]:
            raise ValueError(f"photo {tuple(photo.shape)} and depth {tuple(depth.shape)} must share N, H, W")
        if photo.shape[1] + depth.shape[1] != self.in_channels:
            raise ValueError(f"photo and depth must have {self.in_channels} channels together, "
                             f"got {photo.shape[1]} + {depth.shape[1]}")
        return self.model(torch.cat([photo, depth], dim=1))
