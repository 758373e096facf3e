"""Pix2Pix objective: masked L1, BCE cGAN terms, and what one training step updates."""
from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from pybokeh.nets import PatchDiscriminator, UNetGenerator  # noqa: E402
from pybokeh.nets.losses import (  # noqa: E402
    discriminator_loss, fill_invalid, generator_gan_loss, masked_l1, ssi_loss)
from pybokeh.nets.train import TrainConfig, _step, lr_multiplier  # noqa: E402


def test_masked_l1_hand_value_and_invalid_pixels_ignored():
    pred = torch.tensor([[[[0.5, -1.0], [0.25, 0.0]]]])
    target = torch.tensor([[[[0.0, 1.0], [0.0, float("nan")]]]])
    valid = torch.tensor([[[[True, False], [True, False]]]])
    assert masked_l1(pred, target, valid).item() == pytest.approx((0.5 + 0.25) / 2)
    # Whatever the invalid pixels hold, value and gradient stay the same.
    pred2 = pred.clone()
    pred2[0, 0, 0, 1] = 123.0
    pred2.requires_grad_(True)
    loss = masked_l1(pred2, target, valid)
    loss.backward()
    assert loss.item() == pytest.approx(0.375)
    assert pred2.grad[0, 0, 0, 1] == 0 and pred2.grad[0, 0, 1, 1] == 0
    assert pred2.grad[0, 0, 0, 0] == pytest.approx(0.5)  # sign(0.5) / 2 valid pixels
    assert masked_l1(pred, target, torch.zeros_like(valid)).item() == 0.0


def test_fill_invalid_uses_detached_fake_only_in_holes():
    target = torch.tensor([1.0, 2.0, 3.0])
    fake = torch.tensor([9.0, 8.0, 7.0], requires_grad=True)
    out = fill_invalid(target, torch.tensor([True, False, True]), fake)
    assert out.tolist() == [1.0, 8.0, 3.0] and not out.requires_grad


def test_bce_terms_hand_values():
    zeros = torch.zeros(2, 1, 3, 3)
    loss, real, fake = discriminator_loss(zeros, zeros)
    assert real.item() == pytest.approx(math.log(2)) and fake.item() == pytest.approx(math.log(2))
    assert loss.item() == pytest.approx(math.log(2))
    big = torch.full((1, 1, 2, 2), 3.0)
    loss, real, fake = discriminator_loss(big, -big)
    assert real.item() == pytest.approx(math.log1p(math.exp(-3))) == pytest.approx(fake.item())
    assert loss.item() == pytest.approx(0.5 * (real.item() + fake.item()))
    assert generator_gan_loss(-big).item() == pytest.approx(math.log1p(math.exp(3)))


def test_lr_schedule_constant_then_linear_to_zero():
    steps = 10
    m = [lr_multiplier(s, steps, 0.5) for s in range(steps)]
    assert m[:5] == [1.0] * 5
    assert m[5:] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert lr_multiplier(steps, steps, 0.5) == 0.0


def test_one_step_updates_d_on_detached_fakes_then_g_against_updated_d():
    torch.manual_seed(0)
    G = UNetGenerator(ngf=4, levels=5, dropout=0.0)
    D = PatchDiscriminator(ndf=4)
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    photo = torch.rand(2, 3, 32, 32) * 2 - 1
    target = torch.rand(2, 1, 32, 32) * 2 - 1
    valid = torch.rand(2, 1, 32, 32) > 0.3
    seen = {}
    d_step, g_step = opt_D.step, opt_G.step

    def record_d(*a, **k):
        seen["d_grads"] = [p.grad.clone() for p in D.parameters()]
        seen["g_grads_at_d_step"] = [p.grad for p in G.parameters()]
        out = d_step(*a, **k)
        seen["d_after"] = copy.deepcopy(D)
        return out

    def record_g(*a, **k):
        seen["g_grads"] = [p.grad.clone() for p in G.parameters()]
        return g_step(*a, **k)

    opt_D.step, opt_G.step = record_d, record_g
    _step(G, D, D, opt_G, opt_D, photo, target, valid, lambda_l1=100.0)

    # The D loss never reaches G.
    assert all(g is None for g in seen["g_grads_at_d_step"])
    # D's gradient is that of (BCE(D(x, real with holes filled), 1) + BCE(D(x, fake), 0)) / 2.
    fake0 = G0(photo).detach()
    real0 = torch.where(valid, target, fake0)
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(D0(photo, real0), torch.ones(2, 1, 2, 2))
                    + F.binary_cross_entropy_with_logits(D0(photo, fake0), torch.zeros(2, 1, 2, 2)))
    for got, want in zip(seen["d_grads"], torch.autograd.grad(loss_d, list(D0.parameters())), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # G's gradient is that of BCE(D_updated(x, G(x)), 1) + 100 * masked L1.
    d_after = seen["d_after"]
    fake = G0(photo)
    loss_g = F.binary_cross_entropy_with_logits(d_after(photo, fake), torch.ones(2, 1, 2, 2)) \
        + 100.0 * (fake - target).abs()[valid].mean()
    for got, want in zip(seen["g_grads"], torch.autograd.grad(loss_g, list(G0.parameters())), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # The G step does not move D, and D stays trainable for the next step.
    for a, b in zip(D.parameters(), d_after.parameters()):
        assert torch.equal(a, b) and a.requires_grad


def test_l1_only_step_trains_generator_on_masked_l1():
    torch.manual_seed(0)
    G = UNetGenerator(ngf=4, levels=5, dropout=0.0)
    G0 = copy.deepcopy(G)
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    photo, target = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    valid = torch.ones(1, 1, 32, 32, dtype=torch.bool)
    losses = _step(G, None, None, opt, None, photo, target, valid, lambda_l1=100.0)
    assert set(losses) == {"G_L1"}
    loss = 100.0 * (G0(photo) - target).abs().mean()
    grads = torch.autograd.grad(loss, list(G0.parameters()))
    for p, p0, g in zip(G.parameters(), G0.parameters(), grads):
        torch.testing.assert_close(p, p0 - 0.1 * g, rtol=1e-4, atol=1e-6)


def test_default_l1_weight_is_pix2pix_lambda_100():
    # Isola et al.'s lambda = 100, for a run configured in Python and for one from the CLI.
    from pybokeh.cli import build_parser

    assert TrainConfig(data="d", out="o", steps=1).lambda_l1 == 100.0
    assert build_parser().parse_args(["train", "--data", "d", "--out", "o", "--steps", "1"]).lambda_l1 == 100.0


# --------------------------------------------------------------- scale-and-shift-invariant loss
def _disp_to_net(d):
    return 2.0 * d - 1.0


def test_ssi_loss_ignores_scale_and_shift_but_not_shape():
    torch.manual_seed(1)
    g = torch.rand(2, 1, 16, 16)
    valid = torch.ones_like(g, dtype=torch.bool)
    target = _disp_to_net(g)
    for s, b in ((0.3, 0.1), (2.0, -0.4), (1.0, 0.0)):
        assert ssi_loss(_disp_to_net(s * g + b), target, valid).item() < 1e-4
    assert ssi_loss(_disp_to_net(g.flip(-1)), target, valid).item() > 0.5
    assert ssi_loss(_disp_to_net(-g), target, valid).item() > 0.5          # reversed depth order is wrong
    # A plain L1 would punish the affine copy; the SSI loss does not.
    assert masked_l1(_disp_to_net(0.3 * g + 0.1), target, valid).item() > 0.1


def test_ssi_loss_hand_value_without_gradient_term():
    # p = [0, 1, 1, 1]: median 1 (the lower middle value), mean |p − 1| = 1/4 → [−4, 0, 0, 0];
    # g = [0, 1, 0, 1]: median 0, mean |g| = 1/2 → [0, 2, 0, 2]; |residual| = [4, 2, 0, 2].
    p = torch.tensor([0.0, 1.0, 1.0, 1.0]).view(1, 1, 2, 2)
    g = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2)
    valid = torch.ones_like(p, dtype=torch.bool)
    loss = ssi_loss(_disp_to_net(p), _disp_to_net(g), valid, grad_weight=0.0, trim=0.0)
    assert loss.item() == pytest.approx(8 / 4, abs=1e-6)
    trimmed = ssi_loss(_disp_to_net(p), _disp_to_net(g), valid, grad_weight=0.0)   # drops the largest 20 %: 4
    assert trimmed.item() == pytest.approx((0 + 2 + 2) / 3, abs=1e-6)


def test_ssi_loss_masks_invalid_pixels_and_weighs_images_alike():
    torch.manual_seed(2)
    pred, target = torch.rand(2, 1, 12, 12) * 2 - 1, torch.rand(2, 1, 12, 12) * 2 - 1
    valid = torch.ones_like(pred, dtype=torch.bool)
    valid[1] = False
    valid[1, 0, ::5, ::5] = True                         # a sparse (LiDAR-like) image
    loss = ssi_loss(pred, target, valid)
    poisoned_t = torch.where(valid, target, torch.full_like(target, float("nan")))
    poisoned_p = pred.clone().requires_grad_(True)
    with torch.no_grad():
        poisoned_p[~valid] = 1e3
    loss2 = ssi_loss(poisoned_p, poisoned_t, valid)
    torch.testing.assert_close(loss2, loss)
    loss2.backward()
    assert torch.isfinite(poisoned_p.grad).all() and (poisoned_p.grad[~valid] == 0).all()
    # Mean over images: the sparse image counts as much as the dense one.
    each = [ssi_loss(pred[i:i + 1], target[i:i + 1], valid[i:i + 1]) for i in range(2)]
    torch.testing.assert_close(loss, (each[0] + each[1]) / 2)


def test_ssi_gradient_term_sees_a_misplaced_edge_that_the_mae_averages_away():
    g = torch.zeros(1, 1, 16, 16)
    g[..., 8:] = 1.0
    shifted = torch.zeros_like(g)
    shifted[..., 9:] = 1.0
    valid = torch.ones_like(g, dtype=torch.bool)
    plain = ssi_loss(_disp_to_net(shifted), _disp_to_net(g), valid, grad_weight=0.0)
    with_grad = ssi_loss(_disp_to_net(shifted), _disp_to_net(g), valid, grad_weight=0.5)
    assert with_grad.item() > plain.item() + 0.05


def test_step_with_ssi_term_logs_it_and_trains():
    torch.manual_seed(0)
    G = UNetGenerator(ngf=4, levels=5, dropout=0.0)
    G0 = copy.deepcopy(G)
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    photo, target = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 32, 32) * 2 - 1
    valid = torch.rand(2, 1, 32, 32) > 0.2
    losses = _step(G, None, None, opt, None, photo, target, valid, 100.0, lambda_ssi=10.0, ssi_grad_weight=0.5)
    assert set(losses) == {"G_L1", "G_SSI"}
    fake = G0(photo)
    loss = 100.0 * masked_l1(fake, target, valid) + 10.0 * ssi_loss(fake, target, valid, grad_weight=0.5)
    grads = torch.autograd.grad(loss, list(G0.parameters()))
    for p, p0, gr in zip(G.parameters(), G0.parameters(), grads):
        torch.testing.assert_close(p, p0 - 0.1 * gr, rtol=1e-4, atol=1e-6)


def test_ssi_loss_alone_trains_a_network_from_scratch():
    # One fixed batch, a tiny U-Net, Adam on the SSI loss alone: the loss must fall (a wrong
    # sign, a detached normalisation or a masked-out gradient would keep it flat).
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yy = torch.linspace(0, 1, 32).view(1, 1, 32, 1).expand(4, 1, 32, 32)
    photo = torch.cat([yy, 1 - yy, yy * 0.5], 1) + 0.05 * torch.randn(4, 3, 32, 32)
    target = (yy * 2 - 1).clone()
    target[:, :, 8:16, 8:20] = 0.9                           # a near box
    valid = torch.ones_like(target, dtype=torch.bool)
    G = UNetGenerator(ngf=4, levels=5, dropout=0.0)
    opt = torch.optim.Adam(G.parameters(), 1e-3)
    first = None
    for _ in range(25):
        loss = ssi_loss(G(photo), target, valid)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
