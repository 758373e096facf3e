"""Pix2Pix objective: BCE-with-logits cGAN loss plus λ·L1 masked to valid depth.

``G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G)`` with λ = 100 (Isola et al.).
The discriminator loss is ``(BCE(D(x, y), 1) + BCE(D(x, G(x).detach()), 0)) / 2``; the
generator loss is ``BCE(D(x, G(x)), 1) + λ · masked_l1(G(x), y, valid)``.

Depth sensors leave holes (``valid == False``).  L1 ignores them, and the "real" pair
shown to the discriminator has its holes filled with the (detached) generator output
(:func:`fill_invalid`), so the holes cannot serve as a real/fake cue and the
discriminator judges real depth only where real depth exists.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_l1", "fill_invalid", "discriminator_loss", "generator_gan_loss"]


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over valid pixels of the whole batch.

    Parameters
    ----------
    pred, target : torch.Tensor
        Same shape, e.g. ``(N, 1, H, W)``, any float dtype (accumulated in float32).
    valid : torch.Tensor
        Bool (or 0/1) mask broadcastable to ``pred``; pixels where it is False do not
        contribute, not even through their gradient.

    Returns
    -------
    torch.Tensor
        Scalar; 0 when no pixel is valid.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have one shape")
    mask = valid.to(torch.float32).expand_as(pred)
    # torch.where (not multiply) so NaN/inf in invalid target pixels cannot leak in.
    err = torch.where(mask > 0, (pred.float() - target.float()).abs(), torch.zeros((), device=pred.device))
    return err.sum() / mask.sum().clamp_min(1.0)


def fill_invalid(target: torch.Tensor, valid: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """``target`` where valid, ``fill`` (detached) elsewhere: the discriminator's real depth."""
    return torch.where(valid.expand_as(target), target, fill.detach())


def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(BCE(real, 1) + BCE(fake, 0)) / 2``; returns ``(loss, loss_real, loss_fake)``.

    ``logits_fake`` must come from a detached generator output so that this loss
    trains only the discriminator.
    """
    loss_real = F.binary_cross_entropy_with_logits(logits_real.float(), torch.ones_like(logits_real, dtype=torch.float32))
    loss_fake = F.binary_cross_entropy_with_logits(logits_fake.float(), torch.zeros_like(logits_fake, dtype=torch.float32))
    return 0.5 * (loss_real + loss_fake), loss_real, loss_fake


def generator_gan_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``BCE(D(x, G(x)), 1)``."""
    return F.binary_cross_entropy_with_logits(logits_fake.float(), torch.ones_like(logits_fake, dtype=torch.float32))
