"""Shared fixtures: data location, backends, random inputs.

The test folders mirror the package (``renderer/``, ``depth/``, ``nets/``, ``cli/`` ...) and
have no ``__init__.py``: pytest's default import mode puts each test file's folder, and this
one, on ``sys.path``, so helper modules are imported by their bare names (``import scenes``,
``from _batch_files import ...``).  Module names must therefore be unique across ``tests/``;
a helper used from several folders lives here at the top.
"""
from __future__ import annotations

import pathlib
import sys

import os

import numpy as np
import pytest
from hypothesis import settings

REPO = pathlib.Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run, so a CI run cannot turn red
# on an example no earlier run saw; PYBOKEH_HYPOTHESIS=explore draws new ones
# (and keeps failures in .hypothesis/ to replay) for hunting bugs locally.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("PYBOKEH_HYPOTHESIS", "ci"))

# `python -m pytest` puts the current directory first on
# sys.path; run from the repository root, that would import the source tree's
# pybokeh (no compiled modules) instead of the installed package.  Drop it
# before anything imports pybokeh.
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != REPO]


def shared_data_dir() -> pathlib.Path | None:
    """``../shared/data`` beside the checkout (CI has the same layout), or None."""
    for base in (REPO.parent, REPO.parent.parent):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not present beside the checkout")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def random_image(rng: np.random.Generator, shape: tuple[int, int], dtype=np.uint8) -> np.ndarray:
    """Random sRGB image of the given dtype (uint8, uint16 or float32 in [0, 1])."""
    unit = rng.random((*shape, 3))
    if dtype == np.float32:
        return unit.astype(np.float32)
    return np.round(unit * np.iinfo(dtype).max).astype(dtype)


def blocky_coc(rng: np.random.Generator, shape: tuple[int, int], max_radius: float, grid: bool = True) -> np.ndarray:
    """A CoC map with both smooth regions and hard edges: random rectangles on a ramp.

    ``grid``: rounded to the radius grid that ``render`` hands its kernels
    (``pybokeh.lens.round_to_kernel_grid``); False leaves radii off it (the
    kernels' per-pixel geometry path).
    """
    h, w = shape
    coc = np.linspace(-max_radius, max_radius, h, dtype=np.float32)[:, None].repeat(w, axis=1)
    for _ in range(4):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        coc[y0:y0 + rng.integers(1, h // 2 + 2), x0:x0 + rng.integers(1, w // 2 + 2)] = rng.uniform(-max_radius,
                                                                                                   max_radius)
    coc = coc.astype(np.float32)
    if not grid:
        return coc
    from pybokeh.lens import round_to_kernel_grid  # here: the module imports before pytest_configure's checks
    return round_to_kernel_grid(coc)


def pytest_configure(config):
    # `python -m pytest` from the repository root puts the source tree first on
    # sys.path, which shadows the installed package and its compiled module.
    import importlib.util

    import pybokeh

    import core_override

    core_override.install()  # PYBOKEH_TEST_CORE: another build of _core (the sanitizer job)

    here = pathlib.Path(pybokeh.__file__).resolve().parent
    if here == REPO / "pybokeh" and importlib.util.find_spec("pybokeh._core") is None:
        raise pytest.UsageError(
            "the tests import pybokeh from the source tree, which has no compiled module: "
            "install the package (pip install '.[depth,test]') and run `pytest` "
            "(not `python -m pytest`) from the repository root")
