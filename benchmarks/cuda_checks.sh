#!/usr/bin/env bash
# The CUDA paths on a GPU machine: the tests that need a GPU (NCCL/DDP, bf16, AKLD and the camera
# pipeline on the device, the training loops) and then every benchmark.
# Usage: bash benchmarks/cuda_checks.sh [REPORT_DIR]   (PYTHON=... to choose the interpreter)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT_DIR=${1:-reports/bench}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
timeout "${TEST_TIMEOUT:-150}" $PY -m pytest -q -p no:cacheprovider \
    tests/test_ddp.py tests/test_isp.py tests/test_metrics.py tests/test_train_gan.py tests/test_train_denoiser.py tests/test_resume.py
echo "tests exit $?"
timeout "${BENCH_TIMEOUT:-420}" $PY -m benchmarks --out "$OUT_DIR"
echo "benchmarks exit $?"
