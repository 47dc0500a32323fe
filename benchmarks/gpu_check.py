"""``python -m benchmarks.gpu_check``: the GPU checks from a clone (``scripts/gpu_check.sh``).

Everything lives in :mod:`avalanche_nispa.harness.gpu_check`.
"""

from __future__ import annotations

import sys

from avalanche_nispa.harness.gpu_check import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
