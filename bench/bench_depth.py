"""``pybokeh.estimate_depth`` on a 12-megapixel photo on this CPU (target: ≤ 0.5 s).

Run:

    pytest bench/bench_depth.py --benchmark-columns=min,median,mean,rounds --benchmark-sort=name

The photo is the packaged demo picture resized to 4243×2828 (12.0 MP, uint8).  Side by
side: the default (network + two guided-filter passes) and plain bilinear upsampling, so
the ratio is the guided filter's cost.  ``extra_info`` holds the median split of the
default into ``prepare_s`` (area-downsampling to the 512-px grid and full-resolution
luma), ``network_s`` (Pix2Pix generator at 128×128 and resize to the grid) and
``upsample_s`` (guided filter on the grid, coefficients to full resolution, output).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from pybokeh.cli import demo_photo_path  # noqa: E402
from pybokeh.depth import _estimate  # noqa: E402

SIZE_12MP = (4243, 2828)


@pytest.fixture(scope="module")
def photo_12mp():
    with Image.open(demo_photo_path()) as img:
        return np.asarray(img.convert("RGB").resize(SIZE_12MP, Image.BICUBIC))


@pytest.mark.benchmark(group="estimate_depth 12 MP (4243x2828 uint8), CPU")
@pytest.mark.parametrize("upsample", ["guided", "bilinear"])
def test_estimate_depth_12mp(benchmark, photo_12mp, upsample):
    _estimate(photo_12mp, "cpu", upsample, None, None)       # load the model, warm up
    splits: list[dict[str, float]] = []

    def run():
        t: dict[str, float] = {}
        out = _estimate(photo_12mp, "cpu", upsample, None, t)
        splits.append(t)
        return out

    out = benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    assert out.shape == photo_12mp.shape[:2]
    for key in ("prepare_s", "network_s", "upsample_s", "total_s"):
        benchmark.extra_info[key] = float(np.median([s[key] for s in splits]))
    benchmark.extra_info["megapixels"] = photo_12mp.shape[0] * photo_12mp.shape[1] / 1e6
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
