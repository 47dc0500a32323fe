"""``python -m benchmarks.compare``: the harness's ``nispa-bench compare`` from a clone.

Kept so that the commands in ``benchmarks/results/*/results.md`` run as written;
everything lives in :mod:`avalanche_nispa.harness.cli`.
"""

from __future__ import annotations

import sys

from avalanche_nispa.harness.cli import exit_status, main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(exit_status(main()))
