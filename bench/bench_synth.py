"""Synthetic RGB-D frames per minute on this CPU (pybokeh.nets.synth), one process.

Run:

    pytest bench/bench_synth.py --benchmark-columns=min,median,mean,rounds --benchmark-sort=name

Each round renders 16 frames (seeds 0-15: all scene kinds, their drawn mix) at the
network's training resolution (128 × 128) and at the size training caches frames at
(256-px short side, aspect drawn per frame: the pool ``pybokeh train --synth-ratio``
builds).  ``extra_info["frames_per_minute"]`` is 16 frames / median round time × 60.
Textures: crops of 20 training frames of ``../shared/data/rgbd`` when present, else
random photos (the speed does not depend on their content).
"""
from __future__ import annotations

import numpy as np
import pytest

from pybokeh.nets.synth import TextureBank, synth_frame

N = 16


@pytest.fixture(scope="module")
def bank():
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "rgbd"
    photos = []
    if (root / "splits.json").is_file():
        from pybokeh.nets.data import read_rgbd

        for f in [f for f in read_rgbd(root) if f.split == "train"][::28][:20]:
            with Image.open(f.rgb_path) as im:
                photos.append(np.asarray(im.convert("RGB").reduce(2)))
    if not photos:
        rng = np.random.default_rng(0)
        photos = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(20)]
    return TextureBank(photos, 384, np.random.default_rng(0))


@pytest.mark.benchmark(group="synthetic frames (16 per round), CPU, one process")
@pytest.mark.parametrize("size", ["128x128", "short256"])
def test_synth_frames(benchmark, bank, size):
    def run():
        for i in range(N):
            rng = np.random.default_rng([0, i])
            if size == "128x128":
                synth_frame(rng, bank, shape=(128, 128))
            else:
                synth_frame(rng, bank, short_side=256)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["frames_per_minute"] = N / benchmark.stats.stats.median * 60
