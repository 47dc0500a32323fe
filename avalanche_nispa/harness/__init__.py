"""Comparison harness: NISPA against Avalanche's baselines, over seeds.

Installed with the library so that ``pip install .`` gives a working
``nispa-bench compare``; ``python -m benchmarks.compare`` from a clone is the
same command.
"""

__all__: list[str] = []
