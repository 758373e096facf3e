"""Fuzzing of the public API: ``pybokeh.render`` and ``pybokeh.coc_map`` on hostile input.

Hypothesis draws shapes, dtypes, NaN/inf/out-of-range pixels and depths, lens and
aperture extremes and thread counts.  Every case must end in one of two ways:

* a result of the input's type, dtype and shape (finite, in range), where the
  compiled backends asked for agree with the NumPy reference within 2/255; or
* a ``ValueError`` / ``TypeError`` (or ``MemoryError``) with a message.

Anything else (another exception, a wrong result) fails the batch; a crash or abort
kills the process, which is why ``tests/project/test_api_fuzz.py`` runs batches in
subprocesses.  Run it directly for long campaigns::

    python tests/fuzz_api.py --cases 20000 --backends cpp numba numpy

It prints ``cases: N, rendered: R, rejected: E (by type)`` and exits 0 when every
case ended well, 1 otherwise.
"""
from __future__ import annotations

import argparse
import collections
import math
import sys
import warnings

import numpy as np
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

import pybokeh
from pybokeh.renderer.dispatch import MAX_THREADS

#: The issue-15 reproducer: an inf gain in float32 indexed hist[-1] in cpp's build_coarse.
def _issue15_image():
    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 60).astype(np.uint8)
    img[rng.random((64, 64)) < 0.02] = 255
    return img


SPECIAL = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-30, 1e30]


def _mostly(draw, valid, hostile, rng):
    """A draw from ``valid``, or one time in 25 from ``hostile``: cases stay mostly renderable.

    (The coin is the case's own RNG: Hypothesis biases small integers towards 0.)
    """
    return draw(hostile) if rng.random() < 1 / 25 else draw(valid)


@st.composite
def cases(draw):
    coin = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def mostly(draw, valid, hostile):
        return _mostly(draw, valid, hostile, coin)

    h, w = mostly(draw, st.tuples(st.integers(2, 28), st.integers(2, 28)),
                  st.sampled_from([(0, 5), (5, 0), (1, 1), (1, 2), (2, 1), (1, 40), (40, 1)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = np.dtype(mostly(draw, st.sampled_from(["uint8", "uint16", "float32", "float64"]),
                            st.sampled_from(["float16", "int32", "bool", "int8", "complex64"])))
    unit = rng.random((h, w, 3))
    if dtype.kind in "ui":
        top = 255 if dtype.itemsize == 1 else 65535
        image = np.round(unit * min(top, np.iinfo(dtype).max)).astype(dtype)
        if h * w and draw(st.booleans()):
            image.reshape(-1, 3)[rng.random(h * w) < 0.05] = min(top, np.iinfo(dtype).max)  # clipped lights
    elif dtype.kind == "b":
        image = unit > 0.5
    else:
        image = unit.astype(dtype)
        if h * w and draw(st.booleans()):
            image.reshape(-1, 3)[rng.random(h * w) < 0.05] = 1.0
        if h * w and coin.random() < 1 / 15:
            with np.errstate(over="ignore"):  # 1e30 in float16 is inf: hostile on purpose
                image.reshape(-1)[rng.integers(0, image.size)] = draw(st.sampled_from(SPECIAL + [1.5]))
    if coin.random() < 1 / 30:
        image = image[:, :, :2] if draw(st.booleans()) else np.moveaxis(image, 2, 0)  # wrong layouts

    dh, dw = mostly(draw, st.sampled_from([(h, w), (2 * h, 2 * w), (3 * h, 3 * w)]),
                    st.sampled_from([(h + 3, w), (w, h), (0, 0)]))
    ddt = np.dtype(mostly(draw, st.sampled_from(["float32", "float64", "uint8", "uint16"]),
                          st.sampled_from(["int16", "float16", "bool"])))
    depth = rng.random((dh, dw)) * draw(st.sampled_from([1.0, 10.0, 1e4, 1e-6]))
    if coin.random() < 0.2:
        depth.reshape(-1)[rng.random(dh * dw) < draw(st.sampled_from([0.05, 0.5, 1.0]))] = \
            draw(st.sampled_from(SPECIAL))
    if coin.random() < 1 / 15:
        depth = np.full((dh, dw), draw(st.sampled_from([0.0, 1.0, 7.0])))
    if ddt.kind == "f":
        with np.errstate(over="ignore"):
            depth = depth.astype(ddt)
    else:
        top = np.iinfo(ddt).max if ddt.kind in "ui" else 1
        depth = np.clip(np.nan_to_num(depth, nan=0, posinf=top, neginf=0), 0, top).astype(ddt)

    kind = draw(st.sampled_from(["disparity", "depth"]))
    hostile_number = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 1e30, "7", None])
    if coin.random() < 0.5:
        coordinate = st.one_of(st.floats(0, max(w, h) - 1), st.sampled_from([np.nan, np.inf, -1.0, 1e9]))
        focus = (draw(coordinate), draw(coordinate))
    else:
        focus = mostly(draw, st.floats(0, 10) if kind == "depth" else st.floats(0, 1), hostile_number)
    kwargs = dict(
        depth_kind=kind,
        max_blur=mostly(draw, st.one_of(st.none(), st.floats(0, 60)), st.sampled_from([1e9, np.inf, np.nan, -3.0])),
        blades=mostly(draw, st.sampled_from([0, 0, 3, 5, 6, 16, np.int64(7)]),
                      st.sampled_from([1, 2, 17, -1, 5.0, True])),
        rotation_deg=mostly(draw, st.floats(-720, 720), st.sampled_from([np.nan, np.inf, 1e30])),
        highlight_boost=mostly(draw, st.floats(0, 1000), st.sampled_from([-1.0, 1e39, np.nan, np.inf, 1000.5])),
        focus_range=mostly(draw, st.one_of(st.just(0.0), st.floats(0, 2)), st.sampled_from([-1.0, np.nan, np.inf])),
        threads=mostly(draw, st.one_of(st.none(), st.integers(1, 9), st.just(np.int64(3))),
                       st.sampled_from([0, -1, 2**40, MAX_THREADS + 1, 1.5, "2"])),
    )
    if kind == "depth":
        lens = st.one_of(st.none(), st.floats(0.5, 300))
        kwargs["f_number"] = mostly(draw, lens, st.sampled_from([0.0, -1.0, np.inf, np.nan, 1e-9]))
        kwargs["focal_length_mm"] = mostly(draw, st.floats(1, 300), st.sampled_from([0.0, np.inf, np.nan, 1e9]))
        kwargs["sensor_width_mm"] = mostly(draw, st.floats(1, 100), st.sampled_from([0.0, np.inf, np.nan, 1e-9]))
    return image, depth, focus, kwargs


class Tally:
    def __init__(self):
        self.cases = 0
        self.rendered = 0
        self.rejected = collections.Counter()


def check_case(image, depth, focus, kwargs, backends, tally: Tally) -> None:
    """Run one case on every backend; raise AssertionError on anything but a result or a clean error."""
    tally.cases += 1
    outcomes = {}
    for backend in backends:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a RuntimeWarning reaching the user is a defect too
                out = pybokeh.render(image, depth, focus, backend=backend, **kwargs)
        except (ValueError, TypeError, MemoryError) as exc:
            assert str(exc), f"{type(exc).__name__} without a message on {backend}"
            outcomes[backend] = ("error", f"{type(exc).__name__}: {exc}")
            continue
        assert isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == image.dtype, backend
        if out.dtype.kind == "f":
            assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, backend
        outcomes[backend] = ("ok", out)
    kinds = {o[0] for o in outcomes.values()}
    if len(kinds) > 1:
        verdicts = {b: o[1] if o[0] == "error" else "rendered" for b, o in outcomes.items()}
        raise AssertionError(f"backends disagree on accepting the case: {verdicts}")
    if kinds == {"error"}:
        tally.rejected[next(iter(outcomes.values()))[1].split(":")[0]] += 1
        return
    tally.rendered += 1
    results = [o[1] for o in outcomes.values()]
    scale = 1.0 if image.dtype.kind == "f" else float(np.iinfo(image.dtype).max)
    for other in results[1:]:
        diff = np.abs(results[0].astype(np.float64) - other.astype(np.float64)).max() / scale
        assert diff <= 2.0 / 255 + 1e-6, f"backends differ by {diff * 255:.2f}/255"


def run(n_cases: int, batch_seed: int, backends: list[str]) -> Tally:
    tally = Tally()

    @seed(batch_seed)
    @settings(max_examples=n_cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=("explicit", "generate"))
    @given(case=cases())
    @example(case=(_issue15_image(), np.tile(np.linspace(0, 1, 64), (64, 1)), 1.0,
                   dict(max_blur=40.0, highlight_boost=1e39)))
    @example(case=(_issue15_image(), np.tile(np.linspace(0, 1, 64), (64, 1)), 1.0,
                   dict(max_blur=40.0, highlight_boost=1000.0, threads=2)))
    def fuzz(case):
        check_case(*case, backends, tally)

    fuzz()
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=500, help="cases per batch (Hypothesis examples)")
    p.add_argument("--batches", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the first batch")
    p.add_argument("--backends", nargs="+", default=["cpp", "numba", "numpy"])
    args = p.parse_args(argv)
    import core_override

    core_override.install()
    import pybokeh._core

    print(f"_core: {pybokeh._core.__file__}", flush=True)
    total = Tally()
    failed = False
    for b in range(args.batches):
        try:
            t = run(args.cases, args.seed + b, args.backends)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next batch
            print(f"batch seed {args.seed + b}: FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed = True
            continue
        total.cases += t.cases
        total.rendered += t.rendered
        total.rejected.update(t.rejected)
    print(f"cases: {total.cases}, rendered: {total.rendered}, rejected: {sum(total.rejected.values())} "
          f"{dict(total.rejected)}; backends {' '.join(args.backends)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
