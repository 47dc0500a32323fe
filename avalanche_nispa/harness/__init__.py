"""Comparison harness: NISPA against Avalanche's baselines, over seeds.

Installed with the library, so that ``pip install .`` gives a working
``nispa-bench compare`` (from a clone, ``python -m benchmarks.compare`` is the
same command). The pieces:

* :mod:`.strategies`: the registry; one file per strategy (its typed defaults
  and their sources, its model, its parameter counting), found by ``pkgutil``;
* :mod:`.entry`: what a strategy file defines (:class:`~.entry.StrategyEntry`);
* :mod:`.params`: the typed settings (backbone, training budget, hyperparameters);
* :mod:`.configs`: one configuration per benchmark, with typed overrides;
* :mod:`.models`: the dense backbones the baselines share;
* :mod:`.baselines`: Avalanche 0.6.0's SI and PackNet, repaired;
* :mod:`.planning`: overrides, grids, run plans and fingerprints;
* :mod:`.runner`: one (strategy, seed) run, and a resumable sweep;
* :mod:`.executors`: who runs a sweep's runs, here one by one or as Ray tasks
  (:mod:`.executors.ray_executor`, the optional ``ray`` extra);
* :mod:`.progress`: a bar on a terminal, lines with an ETA in a log;
* :mod:`.comparison`: a sweep, then its reports and plots;
* :mod:`.lock`: one harness at a time in a results directory;
* :mod:`.report` / :mod:`.plots`: mean ± std across seeds; the PNG figures;
* :mod:`.verify`: a results directory against its own command, without training;
* :mod:`.cli`: the command line; :mod:`.speed`: NISPA's speed against Naive.
"""

__all__: list[str] = []
