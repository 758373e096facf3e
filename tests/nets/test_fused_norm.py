"""Fused InstanceNorm + LeakyReLU: reference path, dispatch, argument checks, and the
Triton kernels run through the Triton interpreter in a child process."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from pybokeh.nets import fused_norm as fn  # noqa: E402

TESTS = Path(__file__).resolve().parent


def _run_python(code: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    # cwd outside the repository: the child imports the installed package, not the source tree.
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------- reference path
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_reference_is_instance_norm_then_leaky_relu(dtype, affine, slope):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=dtype) * 2 + 3
    w = torch.rand(3, generator=g, dtype=dtype) + 0.5 if affine else None
    b = torch.randn(3, generator=g, dtype=dtype) if affine else None
    got = fn.reference_instance_norm_leaky_relu(x, w, b, slope, 1e-5)
    assert torch.equal(got, F.leaky_relu(F.instance_norm(x, weight=w, bias=b, eps=1e-5), slope))
    # and the definition, independently of torch's kernels
    mean = x.double().mean((2, 3), keepdim=True)
    xhat = (x.double() - mean) / torch.sqrt(x.double().var((2, 3), unbiased=False, keepdim=True) + 1e-5)
    z = xhat * w.double().view(1, 3, 1, 1) + b.double().view(1, 3, 1, 1) if affine else xhat
    torch.testing.assert_close(got.double(), torch.where(z > 0, z, slope * z), rtol=1e-5, atol=1e-5)


def test_reference_accepts_one_by_one_planes():
    x = torch.randn(2, 4, 1, 1, requires_grad=True)
    b = torch.tensor([-1.0, 0.5, 2.0, -0.1])
    y = fn.reference_instance_norm_leaky_relu(x, None, b, 0.2)
    # PyTorch's kernel leaves rounding noise of x - mean, times 1/sqrt(eps) ~ 316, in the zero plane.
    torch.testing.assert_close(y, F.leaky_relu(b, 0.2).view(1, 4, 1, 1).expand(2, 4, 1, 1), rtol=0, atol=1e-4)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.zeros_like(x), rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- dispatch
def test_cpu_tensors_use_the_reference_by_default(monkeypatch):
    monkeypatch.delenv("PYBOKEH_FUSED_NORM", raising=False)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    w = (torch.rand(3, generator=g) + 0.5).requires_grad_()
    b = torch.randn(3, generator=g).requires_grad_()
    assert fn.resolve_fused_norm_backend(x) == "reference"
    y = fn.fused_instance_norm_leaky_relu(x, w, b)
    assert "Triton" not in y.grad_fn.name()
    y_ref = F.leaky_relu(F.instance_norm(x, weight=w, bias=b), 0.2)
    assert torch.equal(y, y_ref)
    dy = torch.randn(y.shape, generator=g)
    for got, ref in zip(torch.autograd.grad(y, (x, w, b), dy), torch.autograd.grad(y_ref, (x, w, b), dy)):
        assert torch.equal(got, ref)


@pytest.mark.parametrize("is_cuda,has_triton,compiling,expected", [
    (True, True, False, "triton"),
    (True, False, False, "reference"),
    (False, True, False, "reference"),
    (True, True, True, "reference"),  # inside torch.compile Inductor fuses the reference ops
])
def test_auto_backend_rule(monkeypatch, is_cuda, has_triton, compiling, expected):
    monkeypatch.delenv("PYBOKEH_FUSED_NORM", raising=False)
    monkeypatch.setattr(fn, "triton_available", lambda: has_triton)
    monkeypatch.setattr(fn, "_is_compiling", lambda: compiling)
    fake = types.SimpleNamespace(is_cuda=is_cuda, device=torch.device("cuda" if is_cuda else "cpu"))
    assert fn.resolve_fused_norm_backend(fake) == expected


def test_module_matches_functional():
    m = fn.InstanceNormLeakyReLU(3, negative_slope=0.0, affine=True)
    assert "affine=True" in repr(m) and "negative_slope=0.0" in repr(m)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert list(fn.InstanceNormLeakyReLU(3).parameters()) == []
    x = torch.randn(2, 3, 5, 5)
    assert torch.equal(m(x), F.relu(F.instance_norm(x, weight=m.weight, bias=m.bias)))


def test_backend_override_context_and_environment(monkeypatch):
    x = torch.randn(1, 2, 3, 3)
    monkeypatch.setenv("PYBOKEH_FUSED_NORM", "reference")
    assert fn.resolve_fused_norm_backend(x) == "reference"
    with fn.fused_norm_backend("auto"):
        assert fn.resolve_fused_norm_backend(x) == "reference"
    monkeypatch.setenv("PYBOKEH_FUSED_NORM", "bogus")
    with pytest.raises(ValueError, match="PYBOKEH_FUSED_NORM"):
        fn.resolve_fused_norm_backend(x)
    with pytest.raises(ValueError, match="name"):
        with fn.fused_norm_backend("cuda"):
            pass


def test_forcing_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x = torch.randn(1, 2, 3, 3)
    with fn.fused_norm_backend("triton"):
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET|Triton does not import"):
            fn.fused_instance_norm_leaky_relu(x)


def test_nets_package_exposes_the_names():
    import pybokeh.nets as nets

    for name in ("fused_instance_norm_leaky_relu", "InstanceNormLeakyReLU", "triton_available",
                 "fused_norm_backend", "reference_instance_norm_leaky_relu"):
        assert getattr(nets, name) is getattr(fn, name)
        assert name in dir(nets)


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=[[1.0]]), TypeError, "x must be a torch.Tensor"),
    (dict(x=torch.randn(2, 3, 4)), ValueError, "x must be N×C×H×W"),
    (dict(x=torch.ones(1, 2, 3, 3, dtype=torch.int32)), TypeError, "x must be float16"),
    (dict(weight=torch.ones(3)), ValueError, r"weight must have shape \(C,\)"),
    (dict(bias=torch.ones(2, 1)), ValueError, r"bias must have shape \(C,\)"),
    (dict(bias=torch.ones(2, dtype=torch.int64)), TypeError, "bias must be a floating tensor"),
    (dict(weight=[1.0, 1.0]), TypeError, "weight must be a torch.Tensor"),
    (dict(eps=0.0), ValueError, "eps must be > 0"),
    (dict(eps="1e-5"), TypeError, "eps must be a real number"),
    (dict(negative_slope=None), TypeError, "negative_slope must be a real number"),
])
def test_bad_arguments_name_the_argument(kwargs, exc, match):
    args = dict(x=torch.randn(1, 2, 3, 3), weight=None, bias=None, negative_slope=0.2, eps=1e-5)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fn.fused_instance_norm_leaky_relu(**args)


# --------------------------------------------------------------------------- without Triton
def test_import_and_cpu_use_never_import_triton(tmp_path):
    proc = _run_python("""
        import sys, torch
        import pybokeh, pybokeh.nets
        x = torch.randn(1, 2, 3, 3)
        pybokeh.nets.InstanceNormLeakyReLU(2)(x)
        assert "triton" not in sys.modules, "triton imported on the CPU path"
    """, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_pybokeh_with_triton_unimportable(tmp_path):
    proc = _run_python("""
        import sys
        sys.modules["triton"] = None  # any `import triton` now raises ImportError
        import torch, pytest
        import pybokeh, pybokeh.nets
        from pybokeh.nets import fused_instance_norm_leaky_relu, fused_norm_backend, triton_available
        assert not triton_available()
        x = torch.randn(2, 3, 4, 4)
        y = fused_instance_norm_leaky_relu(x)
        ref = torch.nn.functional.leaky_relu(torch.nn.functional.instance_norm(x), 0.2)
        assert torch.equal(y, ref)
        with fused_norm_backend("triton"), pytest.raises(RuntimeError, match="Triton does not import"):
            fused_instance_norm_leaky_relu(x)
        print("ok")
    """, tmp_path)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- Triton kernels
def _require_triton() -> None:
    if importlib.util.find_spec("triton") is None:
        if sys.platform.startswith("linux"):
            pytest.fail("triton is not installed: it is a test dependency (pip install '.[test]')")
        pytest.skip("Triton publishes no wheels for this platform: the kernels are checked on Linux")


def _run_child_pytest(cases: str, cwd: Path, interpret: bool) -> None:
    env = {**os.environ, "PYBOKEH_FUSED_NORM": "auto"}
    env["TRITON_INTERPRET"] = "1" if interpret else "0"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=3", str(TESTS / cases)],
        capture_output=True, text=True, timeout=900, cwd=cwd, env=env)  # cwd: not the source tree
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, f"{cases} failed:\n{proc.stdout[-12000:]}\n{proc.stderr[-3000:]}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-3000:]


@pytest.mark.slow
def test_triton_kernels_under_interpreter(tmp_path):
    """Forward, backward and gradcheck of the Triton kernels vs PyTorch, on the CPU (see the cases file)."""
    _require_triton()
    _run_child_pytest("triton_interp_cases.py", tmp_path, interpret=True)


@pytest.mark.slow
def test_triton_kernels_compile_for_gpu_targets(tmp_path):
    """Every kernel variant lowers to PTX and a cubin for sm_80 and sm_90 (no GPU needed)."""
    _require_triton()
    _run_child_pytest("triton_compile_cases.py", tmp_path, interpret=False)
