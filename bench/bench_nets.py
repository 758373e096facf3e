"""Pix2Pix depth networks on this CPU: one training step (G + D) and inference.

Run (one line each; rounds are few because a reference step takes seconds on 2 cores):

    python -m pytest bench/bench_nets.py --benchmark-columns=mean,stddev,rounds --benchmark-sort=name

Groups put variants side by side so the ratios are the result: memory format
(contiguous vs channels-last), cGAN vs L1-only, reference vs the small CPU config.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pybokeh.nets import PatchDiscriminator, UNetGenerator, levels_for_size, predict_disparity  # noqa: E402
from pybokeh.nets.train import _step  # noqa: E402

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def _train_setup(size, ngf, ndf, batch, fmt, l1_only=False):
    torch.manual_seed(0)
    G = UNetGenerator(ngf=ngf, levels=levels_for_size(size)).to(memory_format=fmt)
    D = None if l1_only else PatchDiscriminator(ndf=ndf).to(memory_format=fmt)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = None if l1_only else torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    photo = (torch.rand(batch, 3, size, size) * 2 - 1).contiguous(memory_format=fmt)
    target = torch.rand(batch, 1, size, size) * 2 - 1
    valid = torch.rand(batch, 1, size, size) > 0.1
    return lambda: _step(G, D, D, opt_G, opt_D, photo, target, valid, 100.0)


@pytest.mark.benchmark(group="train step 256x256 batch 4 (reference ngf 64, ndf 64)")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_train_step_reference(benchmark, fmt):
    step = _train_setup(256, 64, 64, 4, FORMATS[fmt])
    benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="train step 256x256 batch 4 (reference ngf 64, ndf 64)")
def test_train_step_reference_l1_only(benchmark):
    step = _train_setup(256, 64, 64, 4, torch.contiguous_format, l1_only=True)
    benchmark.pedantic(step, rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="train step small CPU configs batch 8")
@pytest.mark.parametrize("size,ngf,ndf,mode", [(128, 16, 16, "cgan"), (128, 16, 64, "cgan"), (128, 16, 16, "l1"),
                                               (128, 32, 32, "cgan"), (192, 32, 32, "cgan")])
def test_train_step_small(benchmark, size, ngf, ndf, mode):
    step = _train_setup(size, ngf, ndf, 8, torch.contiguous_format, l1_only=mode == "l1")
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="train step 128x128 ngf 32 batch 8: memory format")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_train_step_small_memory_format(benchmark, fmt):
    step = _train_setup(128, 32, 32, 8, FORMATS[fmt])
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="inference reference generator (predict_disparity, 640x480 photo)")
@pytest.mark.parametrize("side", [256, 512])
def test_inference_reference(benchmark, side):
    torch.manual_seed(0)
    G = UNetGenerator(input_size=256).eval()
    img = np.random.default_rng(0).random((480, 640, 3), dtype=np.float32)
    benchmark.pedantic(lambda: predict_disparity(G, img, size=side), rounds=10, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="inference raw forward 1x3x256x256, reference generator")
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_forward_memory_format(benchmark, fmt):
    torch.manual_seed(0)
    G = UNetGenerator().eval().to(memory_format=FORMATS[fmt])
    x = torch.rand(1, 3, 256, 256).contiguous(memory_format=FORMATS[fmt])

    def run():
        with torch.inference_mode():
            return G(x)

    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="inference small CPU model (ngf 32, 128 px) on a 640x480 photo")
def test_inference_small(benchmark):
    torch.manual_seed(0)
    G = UNetGenerator(ngf=32, levels=7, input_size=128).eval()
    img = np.random.default_rng(0).random((480, 640, 3), dtype=np.float32)
    benchmark.pedantic(lambda: predict_disparity(G, img), rounds=10, iterations=1, warmup_rounds=1)
