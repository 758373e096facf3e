"""Triton kernels for InstanceNorm + LeakyReLU on N×C×H×W tensors, forward and backward.

This module imports Triton unconditionally; :mod:`pybokeh.nets.fused_norm` imports it
only after checking that Triton is importable, so nothing else depends on Triton.
Use it through :func:`pybokeh.nets.fused_instance_norm_leaky_relu`, which validates
arguments and wires these launchers into autograd.

Layout.  Each (n, c) plane of ``H*W`` elements is one *row* ``r = n*C + c``.  Any
strides are accepted as long as H and W flatten to one stride (contiguous,
channels-last, channel slices, ...); other layouts are copied to contiguous first.

Two launch schemes (chosen by :func:`make_plan`):

* *tile*: one program holds ``ROWS`` whole planes in registers (``ROWS > 1`` for
  tiny planes such as 2×2 or 1×1, so that 1×1 planes at C=512 do not launch one
  program per element).  One read and one write of the tensor.
* *split*: a plane too large for one program (or too few planes to fill the GPU)
  is cut into ``SPLIT`` blocks: a partial-statistics kernel, a per-row combine
  kernel, then an apply kernel.  Two reads and one write.

Numerics.  Statistics accumulate in float32 (float64 for float64 input).  The
variance is a two-pass variance on data held in registers, combined across
blocks with Chan's pairwise formula -- never E[x²] - E[x]².  The mean is kept as
an unevaluated sum ``mean_hi + mean_lo``: ``mean_hi`` is the rounded mean and
``mean_lo`` the mean of the residuals ``x - mean_hi`` (the "corrected two-pass"
algorithm).  ``x - mean_hi`` is then nearly exact, so a plane offset by 1000
normalises to float32 precision rather than losing three digits to the rounding
of the mean.  The backward pass recomputes ``xhat = ((x - mean_hi) - mean_lo) *
rstd`` from x instead of storing it.  Scalars (slope, eps) are passed as
float32 (hi, lo) pairs so that the float64 path sees them to ~1e-15.
"""
from __future__ import annotations

import contextlib
import functools
import struct
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

# Largest plane (elements) that one program holds in registers; larger planes split.
TILE_MAX_ELEMS = 16384
# Block length of the split scheme, and the shortest block it shrinks to when it
# needs more programs to fill the GPU.
SPLIT_BLOCK = 4096
SPLIT_BLOCK_MIN = 1024
# Elements per program when several tiny planes share one program.
MULTI_ROW_ELEMS = 2048
# Partial results combined per loop step in the combine kernels.
COMBINE_BLOCK = 1024
# Triton grid limit on axis 1 (the block index of the split scheme).
_MAX_GRID_Y = 65535


@dataclass(frozen=True)
class Plan:
    """How the kernels are launched for one tensor shape.

    Attributes
    ----------
    split : int
        Number of blocks each plane is cut into; 1 selects the tile scheme.
    rows : int
        Planes per program (tile scheme only; a power of two).
    block : int
        Elements per program along the plane (a power of two, >= 2).
    num_warps : int
        Warps per program on the GPU (ignored by the interpreter).
    """

    split: int
    rows: int
    block: int
    num_warps: int


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _warps_for(elems: int) -> int:
    # About 16 elements per thread; 32 at the 16-warp cap (a 128x128 plane).
    return max(1, min(16, elems // 512))


def _sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return _cuda_sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 132  # the interpreter: any plausible value; plans then match an H100's


@functools.lru_cache(maxsize=None)
def _cuda_sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def make_plan(nc: int, hw: int, acc_dtype: torch.dtype = torch.float32, sm_count: int = 132,
              *, split: int | None = None, block: int | None = None, rows: int | None = None) -> Plan:
    """Choose the launch scheme for ``nc`` planes of ``hw`` elements.

    Parameters
    ----------
    nc, hw : int
        Number of planes (N*C) and elements per plane (H*W), both >= 1.
    acc_dtype : torch.dtype
        Accumulation dtype; float64 halves the register budget.
    sm_count : int
        Streaming multiprocessors on the device: plans aim for >= 2 programs per SM.
    split, block, rows : int, optional
        Force a scheme (tests use this to run the split path on small planes).
        ``split > 1`` forces the split scheme with blocks of ``block`` elements
        (``split`` is then recomputed as ``ceil(hw / block)``); ``split == 1`` or
        ``rows`` force the tile scheme (``rows`` planes per program).

    Returns
    -------
    Plan
    """
    scale = 2 if acc_dtype == torch.float64 else 1
    tile_max = TILE_MAX_ELEMS // scale
    min_programs = 2 * sm_count
    hw_block = max(2, _next_pow2(hw))

    if split is not None and split > 1:
        blk = max(2, _next_pow2(block or SPLIT_BLOCK // scale))
        return Plan(split=-(-hw // blk), rows=1, block=blk, num_warps=_warps_for(blk))
    if split == 1 or rows is not None or (
            hw_block <= tile_max and (nc >= min_programs or hw_block <= SPLIT_BLOCK // scale)):
        if hw_block > tile_max and (split == 1 or rows is not None):
            raise ValueError(f"a plane of {hw} elements does not fit one program (max {tile_max})")
        r = rows if rows is not None else max(1, MULTI_ROW_ELEMS // hw_block)
        r = max(1, min(_next_pow2(r), _next_pow2(nc)))
        return Plan(split=1, rows=r, block=hw_block, num_warps=_warps_for(r * hw_block))
    blk = SPLIT_BLOCK // scale
    while blk > SPLIT_BLOCK_MIN // scale and nc * -(-hw // blk) < min_programs:
        blk //= 2
    return Plan(split=-(-hw // blk), rows=1, block=blk, num_warps=_warps_for(blk))


# --------------------------------------------------------------------------- kernels
@triton.jit
def _row_base(rows, C, s_n, s_c):
    """Offset (int64) of the first element of plane ``rows = n*C + c``."""
    return (rows // C).to(tl.int64) * s_n + (rows % C).to(tl.int64) * s_c


@triton.jit
def _affine(xhat, w, b, HAS_W: tl.constexpr, HAS_B: tl.constexpr):
    z = xhat
    if HAS_W:
        z = z * w
    if HAS_B:
        z = z + b
    return z


@triton.jit
def _leaky(z, slope_hi, slope_lo):
    # Same branch rule as torch: z > 0 ? z : z * slope (also for the gradient).
    return tl.where(z > 0, z, z * slope_hi + z * slope_lo)


@triton.jit
def _leaky_grad(z, dy, slope_hi, slope_lo):
    return tl.where(z > 0, dy, dy * slope_hi + dy * slope_lo)


@triton.jit
def _fwd_tile_kernel(X, Y, W, B, MEAN_HI, MEAN_LO, RSTD,
                     NC, C, HW,
                     sxn, sxc, sxs, syn, syc, sys_,
                     slope_hi, slope_lo, eps_hi, eps_lo,
                     HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                     ROWS: tl.constexpr, BLOCK: tl.constexpr):
    acc = RSTD.dtype.element_ty
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    rmask = rows < NC
    mask = rmask[:, None] & (cols < HW)[None, :]
    cols64 = cols.to(tl.int64)[None, :]

    x = tl.load(X + (_row_base(rows, C, sxn, sxc)[:, None] + cols64 * sxs), mask=mask, other=0.0).to(acc)
    hi = tl.sum(x, axis=1) / HW
    d = tl.where(mask, x - hi[:, None], 0.0)
    dsum = tl.sum(d, axis=1)
    lo = dsum / HW
    var = tl.maximum((tl.sum(d * d, axis=1) - dsum * lo) / HW, 0.0)
    rstd = 1.0 / tl.sqrt(var + eps_hi + eps_lo)
    xhat = (d - lo[:, None]) * rstd[:, None]

    c = rows % C
    w = tl.load(W + c, mask=rmask, other=1.0).to(acc)[:, None] if HAS_W else 1.0
    b = tl.load(B + c, mask=rmask, other=0.0).to(acc)[:, None] if HAS_B else 0.0
    y = _leaky(_affine(xhat, w, b, HAS_W, HAS_B), slope_hi, slope_lo)
    tl.store(Y + (_row_base(rows, C, syn, syc)[:, None] + cols64 * sys_), y.to(Y.dtype.element_ty), mask=mask)
    tl.store(MEAN_HI + rows, hi, mask=rmask)
    tl.store(MEAN_LO + rows, lo, mask=rmask)
    tl.store(RSTD + rows, rstd, mask=rmask)


@triton.jit
def _fwd_partial_kernel(X, PM, PD, PM2, C, HW, SPLIT, sxn, sxc, sxs, BLOCK: tl.constexpr):
    # Per block: rounded mean m, residual sum sum(x - m), and M2 = sum((x - block mean)^2).
    acc = PM2.dtype.element_ty
    row = tl.program_id(0)
    blk = tl.program_id(1)
    cols = blk * BLOCK + tl.arange(0, BLOCK)
    mask = cols < HW
    x = tl.load(X + _row_base(row, C, sxn, sxc) + cols.to(tl.int64) * sxs, mask=mask, other=0.0).to(acc)
    cnt = tl.minimum(HW - blk * BLOCK, BLOCK)
    m = tl.sum(x, axis=0) / cnt
    d = tl.where(mask, x - m, 0.0)
    dsum = tl.sum(d, axis=0)
    m2 = tl.maximum(tl.sum(d * d, axis=0) - dsum * dsum / cnt, 0.0)
    idx = row.to(tl.int64) * SPLIT + blk
    tl.store(PM + idx, m)
    tl.store(PD + idx, dsum)
    tl.store(PM2 + idx, m2)


@triton.jit
def _fwd_combine_kernel(PM, PD, PM2, MEAN_HI, MEAN_LO, RSTD, HW, SPLIT, CHUNK,
                        eps_hi, eps_lo, PBLOCK: tl.constexpr):
    # Chan's parallel combination of the per-block statistics of one plane,
    # keeping the mean as hi + lo (see the module docstring).
    acc = RSTD.dtype.element_ty
    row = tl.program_id(0)
    base = row.to(tl.int64) * SPLIT
    tot = tl.zeros([PBLOCK], dtype=acc)
    for start in range(0, SPLIT, PBLOCK):
        j = start + tl.arange(0, PBLOCK)
        jm = j < SPLIT
        cnt = tl.where(jm, tl.minimum(HW - j * CHUNK, CHUNK), 0).to(acc)
        tot += cnt * tl.load(PM + base + j, mask=jm, other=0.0)
    hi = tl.sum(tot, axis=0) / HW

    tot = tl.zeros([PBLOCK], dtype=acc)
    for start in range(0, SPLIT, PBLOCK):
        j = start + tl.arange(0, PBLOCK)
        jm = j < SPLIT
        cnt = tl.where(jm, tl.minimum(HW - j * CHUNK, CHUNK), 0).to(acc)
        m = tl.load(PM + base + j, mask=jm, other=0.0)
        tot += cnt * (m - hi) + tl.load(PD + base + j, mask=jm, other=0.0)
    lo = tl.sum(tot, axis=0) / HW

    tot = tl.zeros([PBLOCK], dtype=acc)
    for start in range(0, SPLIT, PBLOCK):
        j = start + tl.arange(0, PBLOCK)
        jm = j < SPLIT
        cnt = tl.where(jm, tl.minimum(HW - j * CHUNK, CHUNK), 1).to(acc)
        m = tl.load(PM + base + j, mask=jm, other=0.0)
        dm = (m - hi) + (tl.load(PD + base + j, mask=jm, other=0.0) / cnt - lo)
        tot += tl.where(jm, tl.load(PM2 + base + j, mask=jm, other=0.0) + cnt * dm * dm, 0.0)
    var = tl.maximum(tl.sum(tot, axis=0) / HW, 0.0)
    tl.store(MEAN_HI + row, hi)
    tl.store(MEAN_LO + row, lo)
    tl.store(RSTD + row, 1.0 / tl.sqrt(var + eps_hi + eps_lo))


@triton.jit
def _fwd_apply_kernel(X, Y, W, B, MEAN_HI, MEAN_LO, RSTD, C, HW,
                      sxn, sxc, sxs, syn, syc, sys_, slope_hi, slope_lo,
                      HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK: tl.constexpr):
    acc = RSTD.dtype.element_ty
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < HW
    cols64 = cols.to(tl.int64)
    x = tl.load(X + _row_base(row, C, sxn, sxc) + cols64 * sxs, mask=mask, other=0.0).to(acc)
    xhat = ((x - tl.load(MEAN_HI + row)) - tl.load(MEAN_LO + row)) * tl.load(RSTD + row)
    c = row % C
    w = tl.load(W + c).to(acc) if HAS_W else 1.0
    b = tl.load(B + c).to(acc) if HAS_B else 0.0
    y = _leaky(_affine(xhat, w, b, HAS_W, HAS_B), slope_hi, slope_lo)
    tl.store(Y + _row_base(row, C, syn, syc) + cols64 * sys_, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _bwd_tile_kernel(X, DY, DX, W, B, MEAN_HI, MEAN_LO, RSTD, S1, S2,
                     NC, C, HW,
                     sxn, sxc, sxs, sgn, sgc, sgs, sdn, sdc, sds,
                     slope_hi, slope_lo,
                     HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                     ROWS: tl.constexpr, BLOCK: tl.constexpr):
    # dz = dL/d(affine output); s1 = sum dz, s2 = sum dz*xhat per plane;
    # dx = rstd * w * (dz - s1/HW - xhat * s2/HW).
    acc = RSTD.dtype.element_ty
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK)
    rmask = rows < NC
    mask = rmask[:, None] & (cols < HW)[None, :]
    cols64 = cols.to(tl.int64)[None, :]

    x = tl.load(X + (_row_base(rows, C, sxn, sxc)[:, None] + cols64 * sxs), mask=mask, other=0.0).to(acc)
    dy = tl.load(DY + (_row_base(rows, C, sgn, sgc)[:, None] + cols64 * sgs), mask=mask, other=0.0).to(acc)
    hi = tl.load(MEAN_HI + rows, mask=rmask, other=0.0)[:, None]
    lo = tl.load(MEAN_LO + rows, mask=rmask, other=0.0)[:, None]
    rstd = tl.load(RSTD + rows, mask=rmask, other=0.0)[:, None]
    xhat = tl.where(mask, ((x - hi) - lo) * rstd, 0.0)

    c = rows % C
    w = tl.load(W + c, mask=rmask, other=1.0).to(acc)[:, None] if HAS_W else 1.0
    b = tl.load(B + c, mask=rmask, other=0.0).to(acc)[:, None] if HAS_B else 0.0
    dz = _leaky_grad(_affine(xhat, w, b, HAS_W, HAS_B), dy, slope_hi, slope_lo)
    s1 = tl.sum(dz, axis=1)
    s2 = tl.sum(dz * xhat, axis=1)
    g = (dz - (s1 / HW)[:, None] - xhat * (s2 / HW)[:, None]) * rstd
    if HAS_W:
        g = g * w
    tl.store(DX + (_row_base(rows, C, sdn, sdc)[:, None] + cols64 * sds), g.to(DX.dtype.element_ty), mask=mask)
    tl.store(S1 + rows, s1, mask=rmask)
    tl.store(S2 + rows, s2, mask=rmask)


@triton.jit
def _bwd_partial_kernel(X, DY, W, B, MEAN_HI, MEAN_LO, RSTD, PS1, PS2, C, HW, SPLIT,
                        sxn, sxc, sxs, sgn, sgc, sgs, slope_hi, slope_lo,
                        HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK: tl.constexpr):
    acc = RSTD.dtype.element_ty
    row = tl.program_id(0)
    blk = tl.program_id(1)
    cols = blk * BLOCK + tl.arange(0, BLOCK)
    mask = cols < HW
    cols64 = cols.to(tl.int64)
    x = tl.load(X + _row_base(row, C, sxn, sxc) + cols64 * sxs, mask=mask, other=0.0).to(acc)
    dy = tl.load(DY + _row_base(row, C, sgn, sgc) + cols64 * sgs, mask=mask, other=0.0).to(acc)
    xhat = tl.where(mask, ((x - tl.load(MEAN_HI + row)) - tl.load(MEAN_LO + row)) * tl.load(RSTD + row), 0.0)
    c = row % C
    w = tl.load(W + c).to(acc) if HAS_W else 1.0
    b = tl.load(B + c).to(acc) if HAS_B else 0.0
    dz = _leaky_grad(_affine(xhat, w, b, HAS_W, HAS_B), dy, slope_hi, slope_lo)
    idx = row.to(tl.int64) * SPLIT + blk
    tl.store(PS1 + idx, tl.sum(dz, axis=0))
    tl.store(PS2 + idx, tl.sum(dz * xhat, axis=0))


@triton.jit
def _bwd_combine_kernel(PS1, PS2, S1, S2, SPLIT, PBLOCK: tl.constexpr):
    acc = S1.dtype.element_ty
    row = tl.program_id(0)
    base = row.to(tl.int64) * SPLIT
    t1 = tl.zeros([PBLOCK], dtype=acc)
    t2 = tl.zeros([PBLOCK], dtype=acc)
    for start in range(0, SPLIT, PBLOCK):
        j = start + tl.arange(0, PBLOCK)
        jm = j < SPLIT
        t1 += tl.load(PS1 + base + j, mask=jm, other=0.0)
        t2 += tl.load(PS2 + base + j, mask=jm, other=0.0)
    tl.store(S1 + row, tl.sum(t1, axis=0))
    tl.store(S2 + row, tl.sum(t2, axis=0))


@triton.jit
def _bwd_apply_kernel(X, DY, DX, W, B, MEAN_HI, MEAN_LO, RSTD, S1, S2, C, HW,
                      sxn, sxc, sxs, sgn, sgc, sgs, sdn, sdc, sds, slope_hi, slope_lo,
                      HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK: tl.constexpr):
    acc = RSTD.dtype.element_ty
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < HW
    cols64 = cols.to(tl.int64)
    x = tl.load(X + _row_base(row, C, sxn, sxc) + cols64 * sxs, mask=mask, other=0.0).to(acc)
    dy = tl.load(DY + _row_base(row, C, sgn, sgc) + cols64 * sgs, mask=mask, other=0.0).to(acc)
    rstd = tl.load(RSTD + row)
    xhat = ((x - tl.load(MEAN_HI + row)) - tl.load(MEAN_LO + row)) * rstd
    c = row % C
    w = tl.load(W + c).to(acc) if HAS_W else 1.0
    b = tl.load(B + c).to(acc) if HAS_B else 0.0
    dz = _leaky_grad(_affine(xhat, w, b, HAS_W, HAS_B), dy, slope_hi, slope_lo)
    g = (dz - tl.load(S1 + row) / HW - xhat * (tl.load(S2 + row) / HW)) * rstd
    if HAS_W:
        g = g * w
    tl.store(DX + _row_base(row, C, sdn, sdc) + cols64 * sds, g.to(DX.dtype.element_ty), mask=mask)


# --------------------------------------------------------------------------- launchers
def acc_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype of the kernels: float64 for float64 input, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _split_scalar(value: float, acc: torch.dtype) -> tuple[float, float]:
    """(hi, lo) with hi = float32(value): Triton passes Python floats as float32."""
    hi = struct.unpack("f", struct.pack("f", value))[0]
    return hi, (value - hi if acc == torch.float64 else 0.0)


def _plane_strides(t: torch.Tensor) -> tuple[int, int, int] | None:
    """(stride_n, stride_c, stride_hw) if H and W flatten to one stride, else None."""
    sn, sc, sh, sw = t.stride()
    _, _, h, w = t.shape
    if h == 1:
        return sn, sc, (sw if w > 1 else 1)
    if w == 1:
        return sn, sc, sh
    return (sn, sc, sw) if sh == w * sw else None


def _flat(t: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
    strides = _plane_strides(t)
    if strides is None:
        t = t.contiguous()
        strides = _plane_strides(t)
    return t, strides


def _on_device(t: torch.Tensor):
    # Triton launches on the current CUDA device, which need not be the tensor's.
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _check_grid(plan: Plan, nc: int) -> None:
    if plan.split > _MAX_GRID_Y:
        raise ValueError(f"a plane of {plan.split * plan.block} elements needs {plan.split} blocks, "
                         f"more than the {_MAX_GRID_Y} one launch allows")
    if nc >= 2**31:
        raise ValueError(f"N*C = {nc} planes exceed the launch grid (2**31 - 1)")


def forward(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
            negative_slope: float, eps: float, plan: Plan | None = None):
    """Run the forward kernels.

    Parameters
    ----------
    x : torch.Tensor
        (N, C, H, W), float16/bfloat16/float32/float64, any strides, N*C*H*W > 0.
    weight, bias : torch.Tensor or None
        (C,) per-channel scale and shift, any float dtype, on ``x``'s device.
    negative_slope, eps : float
    plan : Plan, optional
        Launch scheme; default :func:`make_plan`.

    Returns
    -------
    y : torch.Tensor
        Same shape and dtype as ``x``.
    mean_hi, mean_lo, rstd : torch.Tensor
        (N*C,) in the accumulation dtype: plane mean = mean_hi + mean_lo, and
        1/sqrt(biased variance + eps).  Saved for :func:`backward`.
    """
    n, c, h, w = x.shape
    nc, hw = n * c, h * w
    acc = acc_dtype_for(x.dtype)
    if plan is None:
        plan = make_plan(nc, hw, acc, _sm_count(x.device))
    _check_grid(plan, nc)
    x, (sxn, sxc, sxs) = _flat(x)
    y = torch.empty_like(x)
    syn, syc, sys_ = _plane_strides(y)
    mean_hi = torch.empty(nc, device=x.device, dtype=acc)
    mean_lo = torch.empty_like(mean_hi)
    rstd = torch.empty_like(mean_hi)
    slope_hi, slope_lo = _split_scalar(negative_slope, acc)
    eps_hi, eps_lo = _split_scalar(eps, acc)
    has_w, has_b = weight is not None, bias is not None
    w_arg = weight.contiguous() if has_w else rstd  # any pointer: never read when HAS_W is False
    b_arg = bias.contiguous() if has_b else rstd

    with _on_device(x):
        _launch_forward(plan, x, y, w_arg, b_arg, mean_hi, mean_lo, rstd, nc, c, hw, (sxn, sxc, sxs),
                        (syn, syc, sys_), slope_hi, slope_lo, eps_hi, eps_lo, has_w, has_b)
    return y, mean_hi, mean_lo, rstd


def _launch_forward(plan, x, y, w_arg, b_arg, mean_hi, mean_lo, rstd, nc, c, hw, sx, sy,
                    slope_hi, slope_lo, eps_hi, eps_lo, has_w, has_b) -> None:
    sxn, sxc, sxs = sx
    syn, syc, sys_ = sy
    if plan.split == 1:
        _fwd_tile_kernel[(triton.cdiv(nc, plan.rows),)](
            x, y, w_arg, b_arg, mean_hi, mean_lo, rstd, nc, c, hw,
            sxn, sxc, sxs, syn, syc, sys_, slope_hi, slope_lo, eps_hi, eps_lo,
            HAS_W=has_w, HAS_B=has_b, ROWS=plan.rows, BLOCK=plan.block, num_warps=plan.num_warps)
        return

    split = triton.cdiv(hw, plan.block)
    part = torch.empty((3, nc, split), device=x.device, dtype=rstd.dtype)
    _fwd_partial_kernel[(nc, split)](
        x, part[0], part[1], part[2], c, hw, split, sxn, sxc, sxs,
        BLOCK=plan.block, num_warps=plan.num_warps)
    _fwd_combine_kernel[(nc,)](
        part[0], part[1], part[2], mean_hi, mean_lo, rstd, hw, split, plan.block, eps_hi, eps_lo,
        PBLOCK=min(COMBINE_BLOCK, max(2, _next_pow2(split))), num_warps=1 if split <= 256 else 4)
    _fwd_apply_kernel[(nc, split)](
        x, y, w_arg, b_arg, mean_hi, mean_lo, rstd, c, hw,
        sxn, sxc, sxs, syn, syc, sys_, slope_hi, slope_lo,
        HAS_W=has_w, HAS_B=has_b, BLOCK=plan.block, num_warps=plan.num_warps)


def backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
             mean_hi: torch.Tensor, mean_lo: torch.Tensor, rstd: torch.Tensor,
             negative_slope: float, plan: Plan | None = None):
    """Run the backward kernels.

    Parameters
    ----------
    dy : torch.Tensor
        Gradient of the loss w.r.t. the output, shape of ``x``, any strides.
    x, weight, bias, negative_slope : as given to :func:`forward`.
    mean_hi, mean_lo, rstd : torch.Tensor
        As returned by :func:`forward`.
    plan : Plan, optional
        Launch scheme; default :func:`make_plan`.

    Returns
    -------
    dx : torch.Tensor
        Gradient w.r.t. ``x``, dtype of ``x``.
    s1, s2 : torch.Tensor
        (N, C) in the accumulation dtype: per plane sum(dz) and sum(dz * xhat),
        where dz is the gradient w.r.t. the affine output.  Summed over N they
        are the gradients of ``bias`` and ``weight``.
    """
    n, c, h, w = x.shape
    nc, hw = n * c, h * w
    acc = rstd.dtype
    if plan is None:
        plan = make_plan(nc, hw, acc, _sm_count(x.device))
    _check_grid(plan, nc)
    x, (sxn, sxc, sxs) = _flat(x)
    dy, (sgn, sgc, sgs) = _flat(dy)
    dx = torch.empty_like(x)
    sdn, sdc, sds = _plane_strides(dx)
    s1 = torch.empty(nc, device=x.device, dtype=acc)
    s2 = torch.empty_like(s1)
    slope_hi, slope_lo = _split_scalar(negative_slope, acc)
    has_w, has_b = weight is not None, bias is not None
    w_arg = weight.contiguous() if has_w else rstd
    b_arg = bias.contiguous() if has_b else rstd

    with _on_device(x):
        _launch_backward(plan, x, dy, dx, w_arg, b_arg, mean_hi, mean_lo, rstd, s1, s2, nc, c, hw,
                         (sxn, sxc, sxs), (sgn, sgc, sgs), (sdn, sdc, sds), slope_hi, slope_lo, has_w, has_b)
    return dx, s1.view(n, c), s2.view(n, c)


def _launch_backward(plan, x, dy, dx, w_arg, b_arg, mean_hi, mean_lo, rstd, s1, s2, nc, c, hw, sx, sg, sd,
                     slope_hi, slope_lo, has_w, has_b) -> None:
    sxn, sxc, sxs = sx
    sgn, sgc, sgs = sg
    sdn, sdc, sds = sd
    if plan.split == 1:
        _bwd_tile_kernel[(triton.cdiv(nc, plan.rows),)](
            x, dy, dx, w_arg, b_arg, mean_hi, mean_lo, rstd, s1, s2, nc, c, hw,
            sxn, sxc, sxs, sgn, sgc, sgs, sdn, sdc, sds, slope_hi, slope_lo,
            HAS_W=has_w, HAS_B=has_b, ROWS=plan.rows, BLOCK=plan.block, num_warps=plan.num_warps)
        return

    split = triton.cdiv(hw, plan.block)
    part = torch.empty((2, nc, split), device=x.device, dtype=rstd.dtype)
    _bwd_partial_kernel[(nc, split)](
        x, dy, w_arg, b_arg, mean_hi, mean_lo, rstd, part[0], part[1], c, hw, split,
        sxn, sxc, sxs, sgn, sgc, sgs, slope_hi, slope_lo,
        HAS_W=has_w, HAS_B=has_b, BLOCK=plan.block, num_warps=plan.num_warps)
    _bwd_combine_kernel[(nc,)](
        part[0], part[1], s1, s2, split,
        PBLOCK=min(COMBINE_BLOCK, max(2, _next_pow2(split))), num_warps=1 if split <= 256 else 4)
    _bwd_apply_kernel[(nc, split)](
        x, dy, dx, w_arg, b_arg, mean_hi, mean_lo, rstd, s1, s2, c, hw,
        sxn, sxc, sxs, sgn, sgc, sgs, sdn, sdc, sds, slope_hi, slope_lo,
        HAS_W=has_w, HAS_B=has_b, BLOCK=plan.block, num_warps=plan.num_warps)
