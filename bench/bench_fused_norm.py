"""Fused InstanceNorm + LeakyReLU, forward + backward: Triton vs PyTorch eager vs torch.compile.

Shapes are the U-Net's norm layers (256×256 input: C=64 at 128² down to C=512 at
2², and 1×1 at the bottleneck) at batch 1 and 16, plus 256² planes for larger
inputs.  Needs a CUDA GPU; everything skips cleanly without one.  Run::

    pytest bench/bench_fused_norm.py --benchmark-group-by=group \\
        --benchmark-columns=min,median,iqr,rounds

Each group is one shape and dtype; the table's ratios compare the three
implementations side by side.  One round is ``STEPS`` forward + backward steps
followed by one synchronise, so times are per ``STEPS`` steps.  ``extra_info``
holds, per step, the ideal bytes moved (forward reads x, writes y; backward reads
x and dy, writes dx: 5 × numel × itemsize), the achieved bandwidth (ideal bytes /
median step time) and its fraction of the card's peak (from the memory clock
and bus width, or ``PYBOKEH_PEAK_GBPS``).  Targets on a GPU: Triton >= 1.5× eager
and >= 70 % of peak bandwidth on large planes.
"""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from pybokeh.nets import fused_norm as fn  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU: torch.cuda.is_available() is False")

STEPS = 20
DEVICE = "cuda"
UNET_LEVELS = [(64, 128), (128, 64), (256, 32), (512, 16), (512, 8), (512, 4), (512, 2), (512, 1)]
CASES = ([(n, c, s, torch.float32) for n in (1, 16) for c, s in UNET_LEVELS]
         + [(16, 64, 256, torch.float32), (1, 64, 256, torch.float32)]  # split scheme
         + [(16, c, s, torch.bfloat16) for c, s in UNET_LEVELS[:3]])
IMPLS = ["triton", "eager", "compile"]


def _peak_gbps() -> float | None:
    if os.environ.get("PYBOKEH_PEAK_GBPS"):
        return float(os.environ["PYBOKEH_PEAK_GBPS"])
    props = torch.cuda.get_device_properties(0)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9  # double data rate


def _function(impl: str):
    if impl == "triton":
        if not fn.triton_available():
            pytest.skip("Triton does not import")

        def triton_fn(x, slope):
            with fn.fused_norm_backend("triton"):
                return fn.fused_instance_norm_leaky_relu(x, None, None, slope)
        return triton_fn
    if impl == "eager":
        return lambda x, slope: fn.reference_instance_norm_leaky_relu(x, None, None, slope)
    torch._dynamo.reset()  # a fresh compile per shape, never the recompile-limit eager fallback
    return torch.compile(lambda x, slope: fn.reference_instance_norm_leaky_relu(x, None, None, slope),
                         dynamic=False)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n,c,side,dtype", CASES,
                         ids=[f"{str(d)[6:]}-N{n}-C{c}-{s}x{s}" for n, c, s, d in CASES])
def test_fwd_bwd(benchmark, impl, n, c, side, dtype):
    torch.manual_seed(0)
    x = (torch.randn(n, c, side, side, device=DEVICE) * 2 + 1).to(dtype).requires_grad_()
    dy = torch.randn_like(x)
    slope = 0.2
    f = _function(impl)

    def step():
        for _ in range(STEPS):
            y = f(x, slope)
            torch.autograd.grad(y, (x,), dy)
        torch.cuda.synchronize()

    # Correctness before speed: every implementation against eager.
    y = f(x, slope)
    (gx,) = torch.autograd.grad(y, (x,), dy)
    x_ref = x.detach().float().requires_grad_()
    y_ref = fn.reference_instance_norm_leaky_relu(x_ref, None, None, slope)
    (gx_ref,) = torch.autograd.grad(y_ref, (x_ref,), dy.float())
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(y.float(), y_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(gx.float(), gx_ref, rtol=tol, atol=tol * gx_ref.abs().max().item())
    step()  # warm-up: compilation, autotuning, allocator

    benchmark.group = f"{str(dtype)[6:]} fwd+bwd N={n} C={c} {side}x{side}"
    benchmark.pedantic(step, rounds=20, iterations=1, warmup_rounds=2)

    step_s = benchmark.stats.stats.median / STEPS
    ideal_bytes = 5 * x.numel() * x.element_size()
    gbps = ideal_bytes / step_s / 1e9
    peak = _peak_gbps()
    benchmark.extra_info.update({
        "impl": impl, "steps_per_round": STEPS, "step_us": step_s * 1e6, "ideal_bytes": ideal_bytes,
        "achieved_GBps": gbps, "peak_GBps": peak, "fraction_of_peak": gbps / peak if peak else None,
        "device": torch.cuda.get_device_name(0),
    })
