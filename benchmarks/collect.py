"""``python -m benchmarks.collect``: the harness's ``nispa-bench collect`` from a clone
(one table and plot from rows of committed results directories; nothing is trained)."""

from __future__ import annotations

import sys

from avalanche_nispa.harness.collect import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m benchmarks.collect"))
