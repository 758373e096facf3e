"""Pix2Pix objective: BCE-with-logits cGAN loss plus λ·L1 masked to valid depth.

``G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G)`` with λ = 100 (Isola et al.).
The discriminator loss is ``(BCE(D(x, y), 1) + BCE(D(x, G(x).detach()), 0)) / 2``; the
generator loss is ``BCE(D(x, G(x)), 1) + λ · masked_l1(G(x), y, valid)``.

Depth sensors leave holes (``valid == False``).  L1 ignores them, and the "real" pair
shown to the discriminator has its holes filled with the (detached) generator output
(:func:`fill_invalid`), so the holes cannot serve as a real/fake cue and the
discriminator judges real depth only where real depth exists.

:func:`ssi_loss` is the scale-and-shift-invariant alternative (MiDaS, Ranftl et al.
2020): in disparity space, each image's prediction is first aligned to its target by
the least-squares scale and shift over valid pixels, then the mean absolute residual
plus a multi-scale gradient-matching term on the residual is taken.  It does not ask
the network for what one photo cannot tell (the scale, and the offset of far surfaces)
and lets sparse and dense frames count alike (mean per image, then over images).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_l1", "fill_invalid", "discriminator_loss", "generator_gan_loss", "align_scale_shift",
           "ssi_loss"]


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


def align_scale_shift(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``s · pred + b`` with, per image, the ``(s, b)`` minimising ``Σ_valid (s·pred + b − target)²``.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, 1, H, W)`` (any float dtype; computed in float32).
    valid : torch.Tensor
        Bool or 0/1 mask broadcastable to ``pred``.

    Returns
    -------
    torch.Tensor
        ``(N, 1, H, W)`` float32, differentiable in ``pred`` (through ``s`` and ``b`` too).
        An image whose prediction is constant over its valid pixels gets ``s = 0`` and
        ``b`` = its mean target; one without valid pixels gets ``s = b = 0``.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (N, C, H, W)")
    m = valid.to(torch.float32).expand_as(pred)
    p = torch.where(m > 0, pred.float(), torch.zeros((), device=pred.device))
    g = torch.where(m > 0, target.float(), torch.zeros((), device=pred.device))
    dims = (1, 2, 3)
    n = m.sum(dims)
    sp, sg = p.sum(dims), g.sum(dims)
    spp, spg = (p * p).sum(dims), (p * g).sum(dims)
    det = n * spp - sp * sp  # n² · variance of pred: 0 for a constant prediction
    det = torch.where(det > 1e-9 * n * n, det, torch.full_like(det, float("inf")))
    s = (n * spg - sp * sg) / det
    b = (sg - s * sp) / n.clamp_min(1.0)
    return s.view(-1, 1, 1, 1) * pred.float() + b.view(-1, 1, 1, 1)


def _gradient_term(residual: torch.Tensor, m: torch.Tensor, scales: int) -> torch.Tensor:
    """Per image: Σ_scales Σ |∇ residual| over pairs of valid neighbours / valid pixels."""
    total = torch.zeros(residual.shape[0], device=residual.device)
    for k in range(scales):
        step = 2 ** k
        r, mk = residual[..., ::step, ::step], m[..., ::step, ::step]
        mx = mk[..., :, 1:] * mk[..., :, :-1]
        my = mk[..., 1:, :] * mk[..., :-1, :]
        gx = (mx * (r[..., :, 1:] - r[..., :, :-1]).abs()).sum((1, 2, 3))
        gy = (my * (r[..., 1:, :] - r[..., :-1, :]).abs()).sum((1, 2, 3))
        total = total + (gx + gy) / mk.sum((1, 2, 3)).clamp_min(1.0)
    return total


def ssi_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *, grad_weight: float = 0.5,
             grad_scales: int = 4) -> torch.Tensor:
    """Scale-and-shift-invariant loss in disparity space (MiDaS), averaged over images.

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, 1, H, W)`` in the network's convention (:mod:`~pybokeh.nets.depth_target`:
        ``[-1, 1]``, disparity = ``(x + 1) / 2``); both are mapped to disparity first.
    valid : torch.Tensor
        Bool mask broadcastable to ``pred``; sky (at infinity, disparity 0) is valid.
    grad_weight : float
        Weight of the gradient-matching term (MiDaS: 0.5); 0 leaves only the aligned MAE.
    grad_scales : int
        Scales of the gradient term (full resolution, 1/2, 1/4, ...).

    Returns
    -------
    torch.Tensor
        Scalar: mean over images with a valid pixel of
        ``mean_valid |aligned − target| + grad_weight · gradient term``; 0 when none.
    """
    if grad_weight < 0 or grad_scales < 1:
        raise ValueError(f"grad_weight must be >= 0 and grad_scales >= 1, got {grad_weight!r}, {grad_scales!r}")
    p = (pred.float() + 1.0) * 0.5
    g = (target.float() + 1.0) * 0.5
    m = valid.to(torch.float32).expand_as(p)
    aligned = align_scale_shift(p, g, m)
    residual = torch.where(m > 0, aligned - g, torch.zeros((), device=pred.device))
    n = m.sum((1, 2, 3))
    per_image = residual.abs().sum((1, 2, 3)) / n.clamp_min(1.0)
    if grad_weight > 0:
        per_image = per_image + grad_weight * _gradient_term(residual, m, grad_scales)
    has = (n > 0).to(per_image.dtype)
    return (per_image * has).sum() / has.sum().clamp_min(1.0)
