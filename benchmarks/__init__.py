"""Comparison harness: NISPA against Avalanche's baselines, over seeds.

Run ``python -m benchmarks.compare --help``. The pieces:

* :mod:`benchmarks.configs`: one configuration per benchmark (backbone, training
  budget, every strategy's hyperparameters and where they come from);
* :mod:`benchmarks.models`: the dense backbones the baselines share;
* :mod:`benchmarks.strategies`: one factory per strategy;
* :mod:`benchmarks.runner`: one (strategy, seed) run, and a resumable sweep;
* :mod:`benchmarks.report`: mean ± std across seeds, Markdown / CSV / JSON;
* :mod:`benchmarks.plots`: the PNG figures;
* :mod:`benchmarks.compare`: the command line.
"""
