"""Triton InstanceNorm + LeakyReLU kernels checked on the CPU through the Triton interpreter.

Not collected by a plain ``pytest`` run (the name does not match ``test_*.py``):
``tests/nets/test_fused_norm.py::test_triton_kernels_under_interpreter`` runs this file
in a child process with ``TRITON_INTERPRET=1``, which must be set before ``triton``
is imported.  To run it by hand::

    TRITON_INTERPRET=1 pytest -q tests/nets/triton_interp_cases.py

References are the PyTorch ops (``F.instance_norm`` + ``F.leaky_relu``) evaluated
in float64 on the same input values, so float32 results are held to 1e-5 of the
exact answer, not to PyTorch's own float32 rounding.  Shapes stay small: the
interpreter runs each program in Python.
"""
from __future__ import annotations

import os
import sys

if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
    raise RuntimeError("triton was imported before TRITON_INTERPRET=1 was set: run this file in its own process")
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from pybokeh.nets import fused_norm as fn  # noqa: E402
from pybokeh.nets import triton_instance_norm as tk  # noqa: E402

F32, F64 = torch.float32, torch.float64
# Relative tolerance, and the absolute floor as a fraction of the output's scale
# (max(|reference|, 1): the normalised values are O(1) by construction).
RTOL = {F64: 1e-10, F32: 1e-5, torch.float16: 2**-10, torch.bfloat16: 2**-7}


def _inputs(shape, dtype, *, offset=0.0, affine=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = (torch.randn(shape, generator=g, dtype=F64) * 1.5 + offset).to(dtype)
    dy = torch.randn(shape, generator=g, dtype=F64).to(dtype)
    w = b = None
    if affine:
        w = (torch.rand(c, generator=g, dtype=F64) * 1.5 + 0.25).to(dtype)
        b = (torch.randn(c, generator=g, dtype=F64) * 0.5).to(dtype)
    return x, dy, w, b


def _run(fun, x, dy, w, b, **kw):
    """Output and gradients (x, weight, bias) of ``fun`` for output gradient ``dy``."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    y = fun(leaves[0], leaves[1], leaves[2], **kw)
    grads = torch.autograd.grad(y, [t for t in leaves if t is not None], dy)
    it = iter(grads)
    return [y] + [next(it) if t is not None else None for t in leaves]


def _pytorch_reference(x, w, b, negative_slope=0.2, eps=1e-5):
    """F.instance_norm + F.leaky_relu in float64 (torch.instance_norm for 1x1 planes, which F refuses)."""
    up = [t.double() if t is not None else None for t in (x, w, b)]
    if x.shape[2] * x.shape[3] > 1:
        return F.leaky_relu(F.instance_norm(up[0], weight=up[1], bias=up[2], eps=eps), negative_slope)
    return fn.reference_instance_norm_leaky_relu(*up, negative_slope, eps)


def _triton(x, w, b, negative_slope=0.2, eps=1e-5, plan=None):
    return fn._TritonInstanceNormLeakyReLU.apply(x, w, b, negative_slope, eps, plan)


def _assert_close(actual, expected, rtol, what):
    scale = max(expected.abs().max().item(), 1.0)
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=rtol * scale,
                               msg=lambda m: f"{what}: {m}")


def _check(x, dy, w, b, *, negative_slope=0.2, plan=None, rtol=None):
    got = _run(_triton, x, dy, w, b, negative_slope=negative_slope, plan=plan)
    ref = _run(_pytorch_reference, x.double(), dy.double(),
               None if w is None else w.double(), None if b is None else b.double(),
               negative_slope=negative_slope)
    rtol = rtol if rtol is not None else RTOL[x.dtype]
    assert got[0].dtype == x.dtype and got[0].shape == x.shape
    for name, g, r in zip(("output", "grad x", "grad weight", "grad bias"), got, ref):
        if r is None:
            assert g is None
            continue
        _assert_close(g, r, rtol, f"{name} ({x.dtype}, shape {tuple(x.shape)}, plan {plan})")


# --------------------------------------------------------------------------- accuracy
SHAPES = [(2, 3, 5, 7), (2, 4, 1, 1), (1, 3, 2, 2), (2, 2, 16, 16), (1, 2, 3, 1)]


@pytest.mark.parametrize("dtype", [F64, F32], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("offset", [0.0, 1000.0])
@pytest.mark.parametrize("affine", [False, True], ids=["plain", "affine"])
def test_matches_pytorch_reference(dtype, shape, offset, affine):
    x, dy, w, b = _inputs(shape, dtype, offset=offset, affine=affine)
    _check(x, dy, w, b)


@pytest.mark.parametrize("dtype", [F64, F32], ids=str)
def test_relu_slope_zero(dtype):
    x, dy, w, b = _inputs((2, 3, 6, 5), dtype, affine=True, seed=1)
    _check(x, dy, w, b, negative_slope=0.0)


def test_one_by_one_planes_normalise_to_zero():
    x, dy, w, b = _inputs((3, 5, 1, 1), F32, offset=1000.0, affine=True, seed=2)
    y, dx, dw, db = _run(_triton, x, dy, w, b)
    torch.testing.assert_close(y, F.leaky_relu(b, 0.2).view(1, 5, 1, 1).expand(3, 5, 1, 1))
    assert torch.equal(dx, torch.zeros_like(dx)) and torch.equal(dw, torch.zeros_like(dw))
    torch.testing.assert_close(db, torch.where(b.view(1, 5, 1, 1) > 0, dy, 0.2 * dy).sum((0, 2, 3)))


@pytest.mark.parametrize("dtype", [F64, F32], ids=str)
@pytest.mark.parametrize("offset", [0.0, 1000.0])
@pytest.mark.parametrize("shape,block", [((2, 3, 9, 7), 16), ((1, 2, 8, 8), 16), ((1, 1, 5, 5), 2)],
                         ids=["ragged-last-block", "exact-blocks", "13-blocks"])
def test_split_scheme(dtype, offset, shape, block):
    """Planes cut into blocks (partial stats -> combine -> apply), as large planes are on the GPU."""
    nc, hw = shape[0] * shape[1], shape[2] * shape[3]
    plan = tk.make_plan(nc, hw, dtype, split=2, block=block)
    assert plan.split == -(-hw // block) > 1
    x, dy, w, b = _inputs(shape, dtype, offset=offset, affine=True, seed=3)
    _check(x, dy, w, b, plan=plan)


def test_split_scheme_many_blocks_loops_in_combine(monkeypatch):
    """More blocks than the combine kernels read per step, so their loops run several times."""
    monkeypatch.setattr(tk, "COMBINE_BLOCK", 4)
    shape = (1, 2, 6, 7)
    plan = tk.make_plan(2, 42, F32, split=2, block=2)
    assert plan.split == 21
    x, dy, w, b = _inputs(shape, F32, offset=1000.0, affine=True, seed=4)
    _check(x, dy, w, b, plan=plan)


@pytest.mark.parametrize("shape,rows", [((3, 3, 3, 3), 4), ((4, 5, 1, 1), 8), ((2, 3, 2, 2), 2)])
def test_several_planes_per_program(shape, rows):
    """N*C not a multiple of the planes per program: the last program is masked."""
    plan = tk.make_plan(shape[0] * shape[1], shape[2] * shape[3], F32, rows=rows)
    assert plan.split == 1 and plan.rows == rows
    x, dy, w, b = _inputs(shape, F32, affine=True, seed=5)
    _check(x, dy, w, b, plan=plan)


# --------------------------------------------------------------------------- layouts
def _layouts():
    g = torch.Generator().manual_seed(6)
    base = torch.randn(3, 6, 4, 5, generator=g)
    return {
        "channels_last": base.to(memory_format=torch.channels_last),
        "channel_slice": base[:, ::2],
        "transposed_hw": base.transpose(2, 3),  # H, W do not flatten: copied
        "cropped": base[:, :, 1:, 1:4],  # do not flatten either
        "batch_stride": base[::2],
        "storage_offset": base[1:],  # contiguous, but not at the start of its storage
    }


@pytest.mark.parametrize("layout", list(_layouts()))
def test_non_contiguous_input(layout):
    x = _layouts()[layout]
    assert x.storage_offset() > 0 if layout == "storage_offset" else not x.is_contiguous()
    g = torch.Generator().manual_seed(7)
    dy = torch.randn(x.shape, generator=g)
    c = x.shape[1]
    w, b = torch.rand(c, generator=g) + 0.5, torch.randn(c, generator=g)
    _check(x, dy, w, b)


@pytest.mark.parametrize("layout", ["channels_last", "expanded"])
def test_non_contiguous_output_gradient(layout):
    x, dy, w, b = _inputs((2, 3, 4, 4), F32, affine=True, seed=8)
    if layout == "channels_last":
        dy = dy.to(memory_format=torch.channels_last)
    else:  # broadcast gradient, stride 0 in N, H and W (as from y.mean(...) backward)
        dy = torch.randn(1, 3, 1, 1).expand(2, 3, 4, 4)
    _check(x, dy, w, b)


# --------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("case", ["tile-affine", "tile-plain", "split-affine", "1x1-affine"])
def test_gradcheck_float64(case):
    shape, affine, plan = {
        "tile-affine": ((2, 3, 3, 4), True, None),
        "tile-plain": ((2, 2, 3, 3), False, None),
        "split-affine": ((1, 2, 2, 3), True, tk.make_plan(2, 6, F64, split=2, block=2)),
        "1x1-affine": ((2, 2, 1, 1), True, None),
    }[case]
    x, _, w, b = _inputs(shape, F64, affine=affine, seed=9)
    inputs = tuple(t.requires_grad_() for t in (x, w, b) if t is not None)

    def f(*args):
        xi, wi, bi = (args + (None, None))[:3]
        return _triton(xi, wi, bi, 0.2, 1e-5, plan)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


# --------------------------------------------------------------------------- half precision
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_half_precision(dtype, offset):
    """Stats in float32, output in the input dtype, within one ulp (2**-10 fp16, 2**-7 bf16).

    One ulp, not half: the interpreter converts float32 to bfloat16 by truncation
    (about half the outputs differ from round-to-nearest); on the GPU Triton rounds
    to nearest even.
    """
    x, dy, w, b = _inputs((2, 3, 6, 7), dtype, offset=offset, affine=True, seed=10)
    _check(x, dy, w, b)


def test_half_input_float32_params():
    """Autocast-style mix: float16 activations, float32 weight and bias."""
    x, dy, w, b = _inputs((2, 3, 5, 5), torch.float16, affine=True, seed=11)
    w, b = w.float(), b.float()
    _check(x, dy, w, b)
    _, _, dw, db = _run(_triton, x, dy, w, b)
    assert dw.dtype == torch.float32 and db.dtype == torch.float32


# --------------------------------------------------------------------------- dispatch
def test_forced_backend_through_module():
    torch.manual_seed(12)
    m = fn.InstanceNormLeakyReLU(4, negative_slope=0.0, affine=True)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_()
    x = torch.randn(2, 4, 5, 6)
    dy = torch.randn(2, 4, 5, 6)
    out = {}
    for backend in ("triton", "reference"):
        xi = x.clone().requires_grad_()
        m.zero_grad()
        with fn.fused_norm_backend(backend):
            assert fn.resolve_fused_norm_backend(xi) == backend
            y = m(xi)
        assert (y.grad_fn.name() == "_TritonInstanceNormLeakyReLUBackward") == (backend == "triton")
        y.backward(dy)
        out[backend] = (y.detach(), xi.grad, m.weight.grad.clone(), m.bias.grad.clone())
    for got, ref, name in zip(out["triton"], out["reference"], ("output", "grad x", "grad weight", "grad bias")):
        _assert_close(got, ref, 1e-5, name)


def test_auto_backend_keeps_cpu_tensors_on_reference():
    x = torch.randn(1, 2, 3, 3)
    assert fn.resolve_fused_norm_backend(x) == "reference"  # interpreter on, but CPU tensors stay on the reference


def test_double_backward_is_refused():
    x, _, w, b = _inputs((1, 2, 3, 3), F64, affine=True)
    x.requires_grad_()
    y = _triton(x, w, b)
    gx, = torch.autograd.grad(y.sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(gx.sum(), [x])


# --------------------------------------------------------------------------- launch plans
UNET_LEVELS = [(64, 128), (128, 64), (256, 32), (512, 16), (512, 8), (512, 4), (512, 2), (512, 1)]


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("c,side", UNET_LEVELS)
def test_plan_for_unet_shapes(batch, c, side):
    nc, hw = batch * c, side * side
    plan = tk.make_plan(nc, hw, F32, sm_count=132)
    assert plan.block >= 2 and plan.block & (plan.block - 1) == 0
    if plan.split == 1:
        assert plan.block >= hw and plan.rows * plan.block <= max(tk.TILE_MAX_ELEMS, tk.MULTI_ROW_ELEMS)
        programs = -(-nc // plan.rows)
    else:
        assert plan.split == -(-hw // plan.block) and plan.rows == 1
        programs = nc * plan.split
    if batch == 16 and side <= 128:
        assert plan.split == 1  # one read and one write: the whole plane in one program
    if side <= 2:
        assert plan.rows > 1  # tiny planes share a program instead of one program per 1-4 elements
        assert programs <= nc // 2
    assert 1 <= plan.num_warps <= 16


@pytest.mark.parametrize("nc,hw", [(16 * 64, 256 * 256), (64, 256 * 256), (1, 4096 * 4096)])
def test_plan_splits_large_planes(nc, hw):
    plan = tk.make_plan(nc, hw, F32, sm_count=132)
    assert plan.split > 1 and plan.split * plan.block >= hw and plan.split <= 65535
    assert nc * plan.split >= min(2 * 132, nc * -(-hw // tk.SPLIT_BLOCK_MIN))


def test_planes_beyond_the_launch_grid_are_refused():
    with pytest.raises(ValueError, match="blocks"):
        tk._check_grid(tk.Plan(split=70000, rows=1, block=4096, num_warps=8), 1)
    with pytest.raises(ValueError, match="does not fit one program"):
        tk.make_plan(4, 128 * 256, F32, split=1)
