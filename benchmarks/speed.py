"""``python -m benchmarks.speed``: the harness's speed measurement from a clone.

Everything lives in :mod:`avalanche_nispa.harness.speed`.
"""

from __future__ import annotations

import sys

from avalanche_nispa.harness.speed import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
