#!/usr/bin/env bash
# Run the test suite in the project's virtual environment (created on first
# use). Extra arguments go to pytest, e.g.  bash scripts/test.sh -k data -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$repo"
exec "$python" -m pytest "$@"
