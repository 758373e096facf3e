"""Compile every Triton kernel variant for real NVIDIA targets, without a GPU.

The interpreter runs the kernels' arithmetic on the CPU but never lowers them to
PTX, so it cannot catch code that only the GPU compiler rejects.  ``triton.compile``
with a ``GPUTarget`` lowers to PTX and assembles a cubin with the ptxas bundled in
the Triton wheel; no driver or device is needed.

Not collected by a plain ``pytest`` run: ``tests/nets/test_fused_norm.py`` runs it in a
child process without ``TRITON_INTERPRET``.  By hand::

    pytest -q tests/nets/triton_compile_cases.py
"""
from __future__ import annotations

import os

import pytest

if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
    raise RuntimeError("run without TRITON_INTERPRET: this file compiles for the GPU")

triton = pytest.importorskip("triton")
try:
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
except ImportError as exc:  # the ahead-of-time API moved in this Triton version
    pytest.skip(f"this Triton ({triton.__version__}) has no ASTSource/GPUTarget: {exc}", allow_module_level=True)

from pybokeh.nets import triton_instance_norm as tk  # noqa: E402

# (input pointer type, accumulation pointer type, tile shapes (ROWS, BLOCK) as make_plan picks them)
DTYPES = {
    "fp32": ("*fp32", "*fp32", [(512, 2), (1, 4096), (1, 16384)]),
    "bf16": ("*bf16", "*fp32", [(64, 16), (1, 16384)]),
    "fp16": ("*fp16", "*fp32", [(1, 1024)]),
    "fp64": ("*fp64", "*fp64", [(256, 4), (1, 8192)]),
}
TARGETS = [("sm90", 90), ("sm80", 80)]


def _compile(fn, dtype: str, arch: int, constexprs: dict, num_warps: int):
    x_t, acc_t, _ = DTYPES[dtype]
    ptr = dict.fromkeys(["X", "Y", "DY", "DX", "W", "B"], x_t)
    ptr.update(dict.fromkeys(["MEAN_HI", "MEAN_LO", "RSTD", "S1", "S2", "PM", "PD", "PM2", "PS1", "PS2"], acc_t))
    # Unit plane strides are compile-time constants, as Triton specialises an int argument equal to 1.
    constexprs = {**constexprs, **{k: 1 for k in ("sxs", "sys_", "sgs", "sds") if k in fn.arg_names}}
    signature = {}
    for name in fn.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in ptr:
            signature[name] = ptr[name]
        elif name.startswith(("slope", "eps")):
            signature[name] = "fp32"
        else:
            signature[name] = "i32"
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps})


def _cases():
    for dtype, (_, _, tiles) in DTYPES.items():
        for rows, block in tiles:
            for fn in (tk._fwd_tile_kernel, tk._bwd_tile_kernel):
                yield fn, dtype, dict(HAS_W=True, HAS_B=True, ROWS=rows, BLOCK=block), tk._warps_for(rows * block)
        blk = tk.SPLIT_BLOCK // (2 if dtype == "fp64" else 1)
        for fn in (tk._fwd_apply_kernel, tk._bwd_partial_kernel, tk._bwd_apply_kernel):
            yield fn, dtype, dict(HAS_W=True, HAS_B=True, BLOCK=blk), tk._warps_for(blk)
        yield tk._fwd_partial_kernel, dtype, dict(BLOCK=blk), tk._warps_for(blk)
        yield tk._fwd_combine_kernel, dtype, dict(PBLOCK=16), 1
        yield tk._bwd_combine_kernel, dtype, dict(PBLOCK=1024), 4
    # without affine parameters (the U-Net's case)
    yield tk._fwd_tile_kernel, "fp32", dict(HAS_W=False, HAS_B=False, ROWS=1, BLOCK=4096), 8
    yield tk._bwd_tile_kernel, "fp32", dict(HAS_W=False, HAS_B=False, ROWS=1, BLOCK=4096), 8


CASES = list(_cases())


@pytest.mark.parametrize("target", TARGETS, ids=[t[0] for t in TARGETS])
@pytest.mark.parametrize("fn,dtype,constexprs,num_warps", CASES,
                         ids=[f"{fn.__name__}-{d}-" + "-".join(f"{k}{int(v)}" for k, v in c.items())
                              for fn, d, c, _ in CASES])
def test_kernel_compiles_for_gpu(target, fn, dtype, constexprs, num_warps):
    kernel = _compile(fn, dtype, target[1], constexprs, num_warps)
    assert kernel.asm.get("cubin"), "no cubin produced"
    assert ".entry " + fn.__name__ in kernel.asm["ptx"]
