#!/usr/bin/env bash
# The GPU checks of the CUDA renderer (issue 3) and the Triton kernels (issue 5), as one
# run on a lent GPU machine (the workplace's `device` tool), from the repository root:
#
#     bash scripts/gpu_checks.sh          # logs and benchmark JSON under $OUT
#
# That machine is offline; its python3 already holds torch, triton, numba, cupy,
# scikit-build-core, pybind11, pytest, hypothesis and pytest-benchmark, so the package
# is built there without fetching anything.  Budget: about 3 min to build (sm_90 only),
# 2-4 min for the tests and benchmarks; give the call a 600 s limit.
set -uo pipefail
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=python3

{
  nvidia-smi
  nvcc --version
  $py -c "import sys, torch, triton; print(sys.version); print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/env.txt"

# Hopper only: the default architecture list (75-90 + PTX) takes 5x the compile time.
start=$(date +%s)
PYBOKEH_CUDA=ON $py -m pip install -q --no-build-isolation --no-deps --no-index \
  -C cmake.define.CMAKE_CUDA_ARCHITECTURES=90 . > "$OUT/install.txt" 2>&1
status=$?
echo "install exit $status after $(( $(date +%s) - start )) s" | tee -a "$OUT/install.txt"
[ $status -eq 0 ] || { tail -40 "$OUT/install.txt"; exit 1; }
$py -c "import pybokeh; print('backends', pybokeh.backends())" 2>&1 | tee -a "$OUT/env.txt"

# GPU tests: parity with cpp, poisoned outputs, determinism, streams, CuPy, errors;
# then the CUDA renderer benchmark (CUDA events) and the fused-norm benchmark.
$py -m pytest -q -m gpu -p no:cacheprovider tests/ 2>&1 | tee "$OUT/gpu_tests.txt"
$py -m pytest -q -p no:cacheprovider bench/bench_cuda.py --benchmark-only \
  --benchmark-json="$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.txt"
$py -m pytest -q -p no:cacheprovider bench/bench_fused_norm.py --benchmark-only \
  --benchmark-json="$OUT/bench_fused_norm.json" 2>&1 | tee "$OUT/bench_fused_norm.txt"
$py bench/summarize.py "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda_summary.txt"
