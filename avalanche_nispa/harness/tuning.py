"""``--tune``: choose each strategy's configuration on a validation split, report other seeds.

The protocol, the same for every strategy:

1. Every configuration of the strategy's grid (the benchmark's ``tune_grids``,
   or ``--grid`` for that strategy) is trained once on the *tuning seed*
   (``tune_seed``, 0 by default) with each training experience's held-out
   share removed, and scored on that share (:mod:`.validation`). The test
   split is never read. Every strategy gets the same number of configurations.
2. The configuration with the highest average validation accuracy after the
   last experience is chosen (ties: the earlier one in grid order).
3. The chosen configuration is trained on the reported seeds, none of which
   may be the tuning seed, and evaluated on the test stream as usual.

The tuning runs are a results directory of their own, ``<results-dir>/tuning``
(its table is validation accuracy), and the reported table says which
configuration was chosen, from which grid, on what validation score.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .benchmark_config import BenchmarkConfig
from .planning import RunPlan, make_plans, parse_value, read_record

__all__ = [
    "Choice",
    "DEFAULT_REPORTED_SEEDS",
    "TUNING_DIR",
    "TuningPlan",
    "plan_tuning",
    "choose",
    "choices_markdown",
    "reported_plans",
    "smaller_grids",
    "smaller_grids_text",
    "tuning_grids",
    "tuning_plans",
]

#: The seeds a ``--tune`` command reports when ``--seeds`` is not given.
DEFAULT_REPORTED_SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Choice:
    """The configuration chosen for one strategy, and what it was chosen from.

    Attributes:
        strategy: the strategy.
        grid: ``{key: "v1,v2,..."}``, the grid that was tried.
        scores: ``(label, overrides, validation accuracy, settings)`` of every
            configuration, in grid order; ``settings`` are the values of the
            grid's keys (``{"lr": 0.001}``), configured or not.
        chosen: the index in ``scores`` of the chosen one.
        row: the reported row it was chosen for, when that is not the strategy's
            configured network (``nispa@16k``, :mod:`.budget_tuning`); empty otherwise.
    """

    strategy: str
    grid: dict[str, str]
    scores: tuple[tuple[str, dict[str, Any], float, dict[str, Any]], ...]
    chosen: int
    row: str = ""

    @property
    def row_label(self) -> str:
        """The label of the row that reports the choice."""
        return self.row or self.strategy

    @property
    def overrides(self) -> dict[str, Any]:
        """The chosen configuration's settings (empty: the configured defaults)."""
        return dict(self.scores[self.chosen][1])

    @property
    def label(self) -> str:
        """The tuning row of the chosen configuration."""
        return self.scores[self.chosen][0]

    @property
    def score(self) -> float:
        """The chosen configuration's validation accuracy (0-1)."""
        return self.scores[self.chosen][2]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``results.json``."""
        return {
            "strategy": self.strategy,
            **({"row": self.row} if self.row else {}),
            "grid": dict(self.grid),
            "chosen": self.label,
            "chosen_overrides": self.overrides,
            "validation_accuracy": self.score,
            "scores": {label: score for label, _, score, _ in self.scores},
        }


def tuning_grids(
    cfg: BenchmarkConfig, strategies: Sequence[str], given: Sequence[tuple[str, str]] = ()
) -> dict[str, dict[str, str]]:
    """The grid of each strategy: ``--grid`` where given, else the benchmark's.

    A value ``xF`` (``x0.1``, ``x10``) stands for F times the configured value,
    so that one grid fits benchmarks whose configured values differ; it is
    replaced by the number, which is what labels and stored runs show.

    Raises:
        ValueError: a strategy has no grid, or the strategies' grids do not all
            have the same number of configurations (the same tuning budget).
    """
    grids = {s: dict(cfg.tune_grids.get(s, {})) for s in strategies}
    replaced: set[str] = set()
    for key, values in given:
        strategy, _, name = key.partition(".")
        if strategy not in grids:
            raise ValueError(f"--grid {key}: {strategy!r} is not among the tuned strategies "
                             f"({', '.join(strategies)})")
        if strategy not in replaced:
            grids[strategy], replaced = {}, replaced | {strategy}
        grids[strategy][name] = values
    grids = {s: {key: _resolve(cfg, s, key, values) for key, values in grid.items()}
             for s, grid in grids.items()}
    missing = [s for s, grid in grids.items() if not grid]
    if missing:
        raise ValueError(
            f"benchmark {cfg.name!r} has no tuning grid for {', '.join(missing)}: give one with "
            f"--grid {missing[0]}.<key>=v1,v2,... (the same number of configurations as the "
            "others)"
        )
    sizes = {s: _size(grid) for s, grid in grids.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{s} {n}" for s, n in sizes.items())
        raise ValueError(
            "every strategy must get the same tuning budget, but the grids have different "
            f"numbers of configurations ({shown}); give each the same number with --grid"
        )
    return grids


def smaller_grids(
    cfg: BenchmarkConfig, grids: Mapping[str, Mapping[str, str]]
) -> dict[str, tuple[int, int]]:
    """Strategies tuned on fewer configurations than the benchmark's grid for them gives.

    One command gives its strategies equal budgets (:func:`tuning_grids`), but a
    table may set rows of different commands side by side: a strategy tuned alone with
    a smaller ``--grid`` had a smaller budget than one tuned on the benchmark's grid.

    Returns:
        ``{strategy: (its grid's configurations, the benchmark grid's)}``.
    """
    smaller = {}
    for strategy, grid in grids.items():
        default = cfg.tune_grids.get(strategy)
        if default and _size(grid) < _size(default):
            smaller[strategy] = (_size(grid), _size(default))
    return smaller


def smaller_grids_text(smaller: Mapping[str, tuple[int, int]]) -> str:
    """One sentence on each strategy of :func:`smaller_grids` (empty if there is none)."""
    return " ".join(
        f"{strategy} was tuned on {size} configuration(s) where the benchmark's grid has "
        f"{default}: a smaller tuning budget than a strategy tuned on the benchmark's grid "
        "had, so its row is not an equal-budget comparison with such rows."
        for strategy, (size, default) in smaller.items())


def _resolve(cfg: BenchmarkConfig, strategy: str, key: str, values: str) -> str:
    """``values`` with each factor ``xF`` replaced by F times the configured value."""
    resolved = []
    for value in (v.strip() for v in values.split(",") if v.strip()):
        factor = parse_value(value[1:]) if value.startswith("x") else None
        if isinstance(factor, (int, float)) and not isinstance(factor, bool):
            configured = cfg.hparams(strategy)[key]
            text = f"{configured * factor:.6g}"
            if isinstance(configured, float) and isinstance(parse_value(text), int):
                text += ".0"
            value = text
        resolved.append(value)
    return ",".join(resolved)


def _size(grid: Mapping[str, str]) -> int:
    return math.prod(len([v for v in values.split(",") if v.strip()]) for values in grid.values())


def tuning_plans(
    cfg: BenchmarkConfig, grids: Mapping[str, Mapping[str, str]], tune_seed: int
) -> list[RunPlan]:
    """One validation run per configuration of every grid, on ``tune_seed``."""
    pairs = [(f"{s}.{key}", values) for s, grid in grids.items() for key, values in grid.items()]
    plans = make_plans(cfg, list(grids), [tune_seed], pairs)
    return [dataclasses.replace(plan, evaluation="validation") for plan in plans]


def _overrides(cfg: BenchmarkConfig, plan: RunPlan) -> dict[str, Any]:
    """The settings in which ``plan`` differs from its strategy's configured ones."""
    configured = cfg.hparams(plan.strategy)
    return {k: v for k, v in plan.hparams.items() if configured.get(k, object()) != v}


def choose(
    cfg: BenchmarkConfig,
    plans: Sequence[RunPlan],
    records: Mapping[str, Mapping[str, Any]],
    grids: Mapping[str, Mapping[str, str]],
) -> Optional[list[Choice]]:
    """Each strategy's best configuration by validation accuracy; None while a run is missing.

    Args:
        cfg: the benchmark.
        plans: the tuning plans (:func:`tuning_plans`).
        records: finished tuning runs by file stem.
        grids: the grids the plans were made from.
    """
    if any(plan.stem not in records for plan in plans):
        return None
    choices = []
    for strategy, grid in grids.items():
        scores = tuple(
            (plan.label, _overrides(cfg, plan), float(records[plan.stem]["final_accuracy"]),
             {key: plan.hparams[key] for key in grid})
            for plan in plans
            if plan.strategy == strategy
        )
        best = max(range(len(scores)), key=lambda i: (scores[i][2], -i))
        choices.append(Choice(strategy, dict(grid), scores, best))
    return choices


def reported_plans(
    cfg: BenchmarkConfig, choices: Sequence[Choice], seeds: Sequence[int]
) -> list[RunPlan]:
    """The chosen configuration of every strategy on ``seeds``; each row keeps its strategy's name
    (or the name of the budget row it was chosen for)."""
    return [
        RunPlan(choice.row_label, choice.strategy, seed, cfg.hparams(choice.strategy,
                                                                      choice.overrides))
        for choice in choices
        for seed in seeds
    ]


def _settings(settings: Mapping[str, Any], overrides: Mapping[str, Any]) -> str:
    text = ", ".join(f"{key}={value}" for key, value in settings.items())
    return text if overrides else f"{text} (configured)"


def choices_markdown(choices: Sequence[Choice], tune_seed: int, fraction: float,
                     smaller: Optional[Mapping[str, tuple[int, int]]] = None) -> str:
    """The table of what was chosen, for ``results.md`` (``smaller``: :func:`smaller_grids`)."""
    lines = [
        "## Hyperparameters chosen on a validation split",
        "",
        f"Tuned on seed {tune_seed}: each configuration was trained without "
        f"{fraction:.0%} of every training experience (held out class by class) and scored "
        "on that part (average accuracy after the last experience); the test split was not "
        "used. The rows above are the chosen configurations on the other seeds "
        "(`tuning/` holds every tuning run).",
        "",
        "| strategy | grid | chosen | validation accuracy (%) | others (%) |",
        "|---|---|---|---:|---|",
    ]
    for choice in choices:
        grid = "; ".join(f"{key} ∈ {{{values}}}" for key, values in choice.grid.items())
        shown = [_settings(settings, {k: v for k, v in overrides.items() if k in settings})
                 for _, overrides, _, settings in choice.scores]
        others = ", ".join(f"{shown[i]}: {100 * score:.2f}"
                           for i, (_, _, score, _) in enumerate(choice.scores) if i != choice.chosen)
        lines.append(f"| {choice.row_label} | {grid} | {shown[choice.chosen]} | "
                     f"{100 * choice.score:.2f} | {others} |")
    if smaller:
        lines += ["", smaller_grids_text(smaller)]
    return "\n".join(lines) + "\n"


@dataclass
class TuningPlan:
    """What ``--tune`` runs: the grids, the validation runs, and the choice once they are done.

    Attributes:
        grids: each strategy's grid (:func:`tuning_grids`).
        tune_seed: the seed tuned on.
        plans: the validation runs (:func:`tuning_plans`).
        directory: where they are stored (``<results-dir>/tuning``).
        choices: the choice of every strategy, or None while a validation run
            is not finished (then the reported runs are not known yet).
        rows: with a grid per budget row (:mod:`.budget_tuning`), each row's
            strategy and the file stems of its grid; None: one choice per strategy.
    """

    grids: dict[str, dict[str, str]]
    tune_seed: int
    plans: list[RunPlan]
    directory: Path
    choices: Optional[list[Choice]] = None
    rows: Optional[dict[str, tuple[str, tuple[str, ...]]]] = None

    def settle(self, cfg: BenchmarkConfig) -> Optional[list[Choice]]:
        """Read the finished validation runs and choose, if all are done."""
        records = {}
        for plan in self.plans:
            record = read_record(self.directory / "runs" / f"{plan.stem}.json")
            if record is not None and record.get("fingerprint") == plan.fingerprint(cfg):
                records[plan.stem] = record
        if self.rows is None:
            self.choices = choose(cfg, self.plans, records, self.grids)
            return self.choices
        by_stem = {plan.stem: plan for plan in self.plans}
        choices: Optional[list[Choice]] = []
        for row, (strategy, stems) in self.rows.items():
            grid = [by_stem[stem] for stem in stems]  # grid order: ties go to the earlier
            chosen = choose(cfg, grid, records, {strategy: self.grids[strategy]})
            if chosen is None:
                choices = None
                break
            choices.append(dataclasses.replace(chosen[0], row=row if row != strategy else ""))
        self.choices = choices
        return self.choices


def plan_tuning(
    cfg: BenchmarkConfig,
    strategies: Sequence[str],
    given_grids: Sequence[tuple[str, str]],
    tune_seed: int,
    reported_seeds: Sequence[int],
    results_dir: Path,
) -> TuningPlan:
    """The tuning stage of a ``--tune`` command (ValueError for a protocol it breaks)."""
    if tune_seed in reported_seeds:
        raise ValueError(
            f"seed {tune_seed} is the tuning seed and cannot be reported too: the chosen "
            "configuration would be scored on the seed it was chosen on; report other seeds "
            f"(--seeds {','.join(map(str, DEFAULT_REPORTED_SEEDS))}) or tune on another "
            "(--tune-seed)"
        )
    grids = tuning_grids(cfg, strategies, given_grids)
    tuning = TuningPlan(grids, tune_seed, tuning_plans(cfg, grids, tune_seed),
                        Path(results_dir) / TUNING_DIR)
    tuning.settle(cfg)
    return tuning


#: The subdirectory of a ``--tune`` command's results directory that holds its tuning runs.
TUNING_DIR = "tuning"
