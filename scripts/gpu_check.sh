#!/usr/bin/env bash
# GPU checks in one command: the tests marked gpu, a Split MNIST NISPA run with
# exact zero-forgetting checks after every experience, and the per-epoch speed
# benchmark, all on CUDA; one summary line at the end ("gpu_check: ...").
# On a machine without CUDA every GPU part is skipped, saying so (exit 0).
# Extra arguments go to python -m benchmarks.gpu_check (--help lists them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$repo"
export MPLBACKEND="${MPLBACKEND:-Agg}" WANDB_MODE="${WANDB_MODE:-disabled}"
exec "$python" -m benchmarks.gpu_check "$@"
