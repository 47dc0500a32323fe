#!/usr/bin/env bash
# The main job: compare NISPA with Avalanche baselines on the default benchmark
# (scikit-learn's 8x8 digits, no download), print the results table and write
# the plot. Extra arguments go to `python -m benchmarks.compare`, e.g.
#   bash scripts/demo.sh --benchmark split_mnist
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$repo"
exec "$python" -m benchmarks.compare "$@"
