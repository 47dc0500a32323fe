"""Entry points of the comparison harness from a clone, and its committed results.

The harness itself is the package :mod:`avalanche_nispa.harness` (installed with
the library, command ``nispa-bench``); this directory keeps ``results/`` (the
committed runs) and two thin modules so that ``python -m benchmarks.compare`` and
``python -m benchmarks.speed`` work from a checkout as before.
"""

__all__: list[str] = []
