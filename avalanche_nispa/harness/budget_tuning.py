"""``--tune --budgets ... --tune-at budget``: every budget row tuned on its own network.

By default (``--tune-at full``) a ``--tune`` command chooses each strategy's
configuration on its configured network and uses that choice at every budget
of ``--budgets``. A choice made there need not suit a network several times
smaller or sparser: on Permuted MNIST the 800- and 1600-wide NISPA networks
chose lr 0.003 at 20 % density and did better with lr 0.01 at their 2-7 %
budget density (README, "Wider and sparser at the same budget").

With ``--tune-at budget`` every row of the table (a strategy at a budget) gets
its own grid: each grid configuration is trained on the tuning seed at that
budget's network (the budget's density or widths, exactly as the reported row
is sized), the best one is chosen for that row alone, and the row reports it.
Every row still gets the same number of configurations; the tuning costs one
grid per row instead of one per strategy. Rows that are the same network
(``full`` and ``as:nispa`` for NISPA itself) share one grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Optional

from .benchmark_config import BenchmarkConfig
from .budgets import Budget, expand_budgets
from .planning import RunPlan, refuse_same_runs
from .tuning import TuningPlan

__all__ = ["TUNE_AT", "check_tune_at", "tune_per_budget"]

#: The values of ``--tune-at``: where a budget row's configuration is chosen.
TUNE_AT = ("full", "budget")


def check_tune_at(tune_at: Optional[str], tune: bool, budgets: Optional[str]) -> bool:
    """Whether the command tunes per budget row (ValueError for a combination it cannot do)."""
    if tune_at is None:
        return False
    if not tune:
        raise ValueError(f"--tune-at says where --tune chooses a configuration; add --tune or "
                         f"drop --tune-at {tune_at}")
    if tune_at == "budget" and not budgets:
        raise ValueError("--tune-at budget tunes every row of --budgets on its own network; "
                         "add --budgets (e.g. --budgets 16k,32k,full) or drop --tune-at")
    return tune_at == "budget"


def _row(cfg: BenchmarkConfig, plan: RunPlan, budget: Budget) -> Optional[RunPlan]:
    """``plan`` sized to ``budget`` (None when the budget gives its strategy no row)."""
    expanded = expand_budgets(cfg, [plan], [budget])
    return expanded[0] if expanded else None


def tune_per_budget(cfg: BenchmarkConfig, tuning: TuningPlan, budgets: Sequence[Budget]) -> TuningPlan:
    """``tuning`` (a strategy's grid on its configured network) repeated at every budget.

    The result's ``plans`` are every grid configuration at every budget's network
    (labels ``nispa(lr=0.003)@16k``; a budget that is the configured network keeps
    the plain label), and its ``rows`` map each reported row (``nispa@16k``) to its
    strategy and the file stems of its grid, so that :meth:`TuningPlan.settle`
    chooses per row. ValueError for a budget that :func:`expand_budgets` refuses, or
    for two budgets that give one strategy the same network.
    """
    plans: list[RunPlan] = []
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for strategy in tuning.grids:
        grid = [plan for plan in tuning.plans if plan.strategy == strategy]
        configured = RunPlan(strategy, strategy, tuning.tune_seed, cfg.hparams(strategy))
        for budget in budgets:
            row = _row(cfg, configured, budget)
            if row is None or row.label in rows:
                continue  # the same network as a row already tuned
            sized = [_row(cfg, plan, budget) for plan in grid]
            assert all(plan is not None for plan in sized), "a grid row is sized like its strategy"
            rows[row.label] = (strategy, tuple(plan.stem for plan in sized))
            plans += sized
    refuse_same_runs(cfg, plans)  # two budgets that size one network alike
    tuned = dataclasses.replace(tuning, plans=plans, rows=rows, choices=None)
    tuned.settle(cfg)
    return tuned
