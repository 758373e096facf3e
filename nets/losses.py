"""Pix2Pix objective: BCE-with-logits cGAN loss plus λ·L1 masked to valid depth.

``G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G)`` with λ = 100 (Isola et al.).
The discriminator loss is ``(BCE(D(x, y), 1) + BCE(D(x, G(x).detach()), 0)) / 2``; the
generator loss is ``BCE(D(x, G(x)), 1) + λ · masked_l1(G(x), y, valid)``.

Depth sensors leave holes (``valid == False``).  L1 ignores them, and the "real" pair
shown to the discriminator has its holes filled with the (detached) generator output
(:func:`fill_invalid`), so the holes cannot serve as a real/fake cue and the
discriminator judges real depth only where real depth exists.

:func:`ssi_loss` is the scale-and-shift-invariant alternative (MiDaS, Ranftl et al.
2020, their ``L_ssitrim`` + ``L_reg``): in disparity space, prediction and target are
each normalised per image by their own median (shift) and mean absolute deviation from
it (scale) over valid pixels; the loss is the mean absolute difference of the two,
leaving out each image's largest 20 % of residuals, plus a multi-scale
gradient-matching term on the residual.  It does not ask the network for what one
photo cannot tell (the scale, and the offset of far surfaces) and lets sparse and dense
frames count alike (mean per image, then over images).

Why not align the prediction to the target by least squares (the evaluation's
alignment, :func:`pybokeh.nets.metrics.align_inverse_depth`) inside the loss: the fitted scale is
``cov(pred, target) / var(pred)``, about 0 for an untrained network, and the loss's
gradient is proportional to it — training from scratch barely moves (measured: the
least-squares version left a 2.6 M-parameter U-Net at the constant baseline after 2500
steps).  The median/deviation normalisation gives a gradient ``1 / scale(pred)``
whatever the correlation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_l1", "fill_invalid", "discriminator_loss", "generator_gan_loss", "ssi_loss"]


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


def _normalise(x: torch.Tensor, m: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Per image: ``(x − median) / mean |x − median|`` over valid pixels (``m``: 0/1 mask)."""
    flat = torch.where(m > 0, x, torch.full((), float("inf"), device=x.device)).flatten(1)
    srt, _ = flat.sort(dim=1)
    k = ((n - 1).clamp_min(0) // 2).long()
    med = srt.gather(1, k[:, None]).view(-1, 1, 1, 1)
    med = torch.where(n.view(-1, 1, 1, 1) > 0, med, torch.zeros_like(med))
    dev = torch.where(m > 0, (x - med).abs(), torch.zeros((), device=x.device)).sum((1, 2, 3)) / n.clamp_min(1.0)
    return (x - med) / dev.clamp_min(1e-4).view(-1, 1, 1, 1)


def ssi_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *, grad_weight: float = 0.5,
             grad_scales: int = 4, trim: float = 0.2) -> torch.Tensor:
    """Scale-and-shift-invariant loss in disparity space (MiDaS ``ssitrim`` + gradient matching).

    Parameters
    ----------
    pred, target : torch.Tensor
        ``(N, 1, H, W)`` in the network's convention (:mod:`~pybokeh.nets.depth_target`:
        ``[-1, 1]``, disparity = ``(x + 1) / 2``); both are mapped to disparity first.
    valid : torch.Tensor
        Bool mask broadcastable to ``pred``; sky (at infinity, disparity 0) is valid.
    grad_weight : float
        Weight of the gradient-matching term (MiDaS: 0.5); 0 leaves only the data term.
    grad_scales : int
        Scales of the gradient term (full resolution, 1/2, 1/4, ...).
    trim : float
        Fraction of each image's largest residuals left out of the data term (MiDaS: 0.2).

    Returns
    -------
    torch.Tensor
        Scalar: mean over images with a valid pixel of the trimmed mean of
        ``|norm(pred) − norm(target)|`` plus ``grad_weight ·`` the gradient term, where
        ``norm(x) = (x − median x) / mean |x − median x|`` per image; 0 when no pixel is valid.
        Unchanged when ``pred`` is scaled by a positive factor or shifted.
    """
    if grad_weight < 0 or grad_scales < 1 or not 0 <= trim < 1:
        raise ValueError(f"grad_weight must be >= 0, grad_scales >= 1 and trim in [0, 1), got {grad_weight!r}, "
                         f"{grad_scales!r}, {trim!r}")
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (N, C, H, W)")
    p = (pred.float() + 1.0) * 0.5
    g = (target.float() + 1.0) * 0.5
    m = valid.to(torch.float32).expand_as(p)
    n = m.sum((1, 2, 3))
    g = torch.where(m > 0, g, torch.zeros((), device=pred.device))  # NaN/inf in holes must not leak
    residual = torch.where(m > 0, _normalise(p, m, n) - _normalise(g, m, n), torch.zeros((), device=pred.device))
    err = torch.where(m > 0, residual.abs(), torch.full((), float("inf"), device=pred.device)).flatten(1)
    err, _ = err.sort(dim=1)
    keep = torch.floor(n * (1.0 - trim)).clamp_min(1.0)
    rank = torch.arange(err.shape[1], device=pred.device)[None, :]
    kept = rank < keep[:, None]
    per_image = torch.where(kept, err, torch.zeros((), device=pred.device)).sum(1) / keep
    if grad_weight > 0:
        per_image = per_image + grad_weight * _gradient_term(residual, m, grad_scales)
    has = (n > 0).to(per_image.dtype)
    return (per_image * has).sum() / has.sum().clamp_min(1.0)
