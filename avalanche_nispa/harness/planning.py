"""From settings to runs: overrides, grids, run plans, and what a sweep would replace.

A run is identified by its label (the row), its seed and its fingerprint, a
digest of everything that determines its result (benchmark, backbone, strategy,
seed and the flat hyperparameters dict). A stored run is reused while its
fingerprint matches, so this module is also what decides that re-running a
committed command runs nothing.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from .configs import STRATEGIES, BenchmarkConfig
from .params import Training

__all__ = [
    "GRID_DEFAULT",
    "PROTOCOL",
    "RunPlan",
    "SHARED_KEYS",
    "apply_overrides",
    "file_stem",
    "make_plans",
    "parse_assignment",
    "parse_value",
    "read_record",
    "refuse_same_runs",
    "results_dir_conflicts",
]

#: Version of the measurement protocol; stored runs of another version are redone.
PROTOCOL = 1

#: Keys ``--set KEY=VALUE`` may give every strategy: the training settings, and
#: the SGD momentum that the dense baselines' optimizer reads.
SHARED_KEYS = Training.keys()

#: A grid value meaning "the benchmark's configured value" (row without a suffix).
GRID_DEFAULT = "default"


def file_stem(label: str) -> str:
    """``label`` as a file name part, safe on every file system."""
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label).strip("_")


def read_record(path: Path) -> Optional[dict[str, Any]]:
    """The JSON at ``path``, or None when it is missing or unreadable."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


@dataclass
class RunPlan:
    """One run to do: a strategy (possibly a variant of it) and a seed.

    Attributes:
        label: the row it belongs to, e.g. ``"ewc"`` or ``"nispa(density=0.05)"``.
        strategy: the strategy's name (a registered one).
        seed: the seed of the run (model init, data order, and the benchmark
            builder's own seed where it takes one).
        hparams: the strategy's full flat hyperparameters.
        evaluation: ``"test"`` (the benchmark's test stream) or ``"validation"``
            (a ``--tune`` run: trained without, and scored on, the part of each
            training experience that :mod:`.validation` holds out).
    """

    label: str
    strategy: str
    seed: int
    hparams: dict[str, Any]
    evaluation: str = "test"

    @property
    def stem(self) -> str:
        """File name stem of the run, safe on every file system."""
        return f"{file_stem(self.label)}__seed{self.seed}"

    def fingerprint(self, cfg: BenchmarkConfig) -> str:
        """A digest of everything that determines the run's result."""
        identity = {
            "protocol": PROTOCOL,
            "benchmark": cfg.name,
            "builder_kwargs": cfg.builder_kwargs,
            "backbone": asdict(cfg.backbone),
            "n_classes": cfg.n_classes,
            "strategy": self.strategy,
            "seed": self.seed,
            "hparams": self.hparams,
        }
        if self.evaluation != "test":
            identity["evaluation"] = self.evaluation
            identity["validation_fraction"] = cfg.validation_fraction
        text = json.dumps(identity, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_value(text: str) -> Any:
    """A Python literal (``1e4``, ``(400, 400)``, ``None``, ``True``) or the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``, with a clear error otherwise."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def apply_overrides(cfg: BenchmarkConfig, overrides: Sequence[tuple[str, Any]]) -> BenchmarkConfig:
    """``cfg`` with settings replaced, each checked against its typed field.

    Keys: ``epochs`` / ``lr`` / any common training key (all strategies that
    do not set it themselves), ``<strategy>.<key>`` (that strategy only),
    ``backbone.<field>`` (the shared network).
    """
    training = cfg.training
    strategies = dict(cfg.strategies)
    scoped = {name: dict(values) for name, values in cfg.scoped_training.items()}
    backbone = cfg.backbone
    for key, value in overrides:
        head, _, tail = key.partition(".")
        if not tail:
            if key not in SHARED_KEYS:
                raise ValueError(
                    f"cannot set {key!r} for every strategy: the shared keys are "
                    f"{', '.join(SHARED_KEYS)}; set a strategy's own key as "
                    f"<strategy>.{key} (e.g. ewc.{key})"
                )
            training = training.updated(**{key: value})
        elif head == "backbone":
            if tail == "hidden_sizes" and isinstance(value, int):
                value = (value,)
            backbone = dataclasses.replace(backbone, **{tail: value})
        elif head in strategies:
            try:
                cfg.check_key(head, tail, value)
            except KeyError as err:
                raise ValueError(f"cannot set {key!r}: {err.args[0]}") from None
            if tail in strategies[head].keys():
                strategies[head] = strategies[head].updated(**{tail: value})
            else:
                scoped.setdefault(head, {})[tail] = value
        else:
            raise ValueError(
                f"cannot set {key!r}: {head!r} is neither 'backbone' nor a strategy "
                f"({', '.join(strategies)})"
            )
    return dataclasses.replace(
        cfg, training=training, strategies=strategies, scoped_training=scoped, backbone=backbone
    )


def _grid_label(strategy: str, assignment: dict[str, str]) -> str:
    inner = ",".join(f"{k}={v}" for k, v in assignment.items())
    return f"{strategy}({inner})"


def make_plans(
    cfg: BenchmarkConfig,
    strategies: Sequence[str],
    seeds: Sequence[int],
    grids: Sequence[tuple[str, str]] = (),
) -> list[RunPlan]:
    """One run plan per (strategy or grid variant, seed), strategies in order.

    Args:
        grids: ``("<strategy>.<key>", "v1,v2,...")`` pairs; a strategy with grids
            runs every combination of its values instead of its configuration.
            The value ``default`` stands for the configured value, so that
            ``nispa.lr=default,0.003`` gives the rows ``nispa`` (the same runs
            as without a grid) and ``nispa(lr=0.003)``. A strategy named only
            in a grid is added to ``strategies``. Values are type-checked
            against the strategy's settings (KeyError / TypeError otherwise).

    Raises:
        ValueError: something is given twice, so that a row or a run would be
            counted twice: a strategy, a seed, a grid key or one of its values,
            or two rows whose runs have the same settings (``default`` next to
            the configured value, ``1e4`` next to ``10000.0``); or a strategy
            does not support the benchmark's scenario (task or class).
    """
    _refuse_twice("strategy", strategies)
    _refuse_twice("seed", seeds)
    cfg.check_scenario([*strategies, *(key.partition(".")[0] for key, _ in grids)])
    per_strategy: dict[str, dict[str, list[str]]] = {}
    for key, values in grids:
        strategy, _, name = key.partition(".")
        if strategy not in STRATEGIES or not name:
            raise ValueError(f"a grid key must be <strategy>.<key>, got {key!r}")
        if name in per_strategy.get(strategy, {}):
            raise ValueError(f"the grid of {key} is given twice: give all its values in one "
                             "--grid (--density-sweep is a grid of the density)")
        listed = [v.strip() for v in values.split(",") if v.strip()]
        _refuse_twice(f"{key}=", listed, joined="")
        per_strategy.setdefault(strategy, {})[name] = listed
    order = list(strategies) + [s for s in per_strategy if s not in strategies]
    plans = []
    for strategy in order:
        grid = per_strategy.get(strategy)
        if grid:
            names = list(grid)
            variants = [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]
        else:
            variants = [{}]
        for variant in variants:
            variant = {k: v for k, v in variant.items() if v != GRID_DEFAULT}
            overrides = {k: parse_value(v) for k, v in variant.items()}
            hparams = cfg.hparams(strategy, overrides)
            label = _grid_label(strategy, variant) if variant else strategy
            plans += [RunPlan(label, strategy, seed, hparams) for seed in seeds]
    refuse_same_runs(cfg, plans)
    return plans


def _refuse_twice(what: str, values: Sequence[Any], joined: str = " ") -> None:
    """A ValueError naming the first value of ``values`` that comes twice."""
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what}{joined}{value} is given twice: its runs would be "
                             "counted twice in the table")
        seen.add(value)


def refuse_same_runs(cfg: BenchmarkConfig, plans: Sequence[RunPlan]) -> None:
    """A ValueError when two plans are one run (same settings) or share one file."""
    by_fingerprint: dict[str, RunPlan] = {}
    by_stem: dict[str, RunPlan] = {}
    for plan in plans:
        same = by_fingerprint.setdefault(plan.fingerprint(cfg), plan)
        if same is not plan:
            raise ValueError(
                f"{same.label} and {plan.label} are the same runs (the same settings): each "
                "would be trained and counted in its own row; keep one of them"
            )
        same = by_stem.setdefault(plan.stem, plan)
        if same is not plan:
            raise ValueError(f"{same.label} and {plan.label} would share the file "
                             f"runs/{plan.stem}.json: rename one value")


def results_dir_conflicts(
    cfg: BenchmarkConfig, plans: Sequence[RunPlan], results_dir: Path, *, rerun: bool = False
) -> list[str]:
    """What running ``plans`` into ``results_dir`` would replace without being asked.

    The table is rewritten from this command's runs only, so: the rows of the
    directory's current table that these plans do not produce, and the seeds
    of its rows that they do not run. The current table is ``results.json``;
    when it is missing, the stored runs (``runs/*.json``) are, so that a table
    lost or never written still protects its runs. And, unless ``rerun``,
    stored runs with the same file name but other settings (a finished run is
    kept only while its settings match).
    """
    results_dir = Path(results_dir)
    source, verb, table = _current_table(results_dir)
    planned: dict[str, set[int]] = {}
    for plan in plans:
        planned.setdefault(plan.label, set()).add(plan.seed)
    problems = []
    dropped = [label for label in table if label not in planned]
    if dropped and verb == "averages":
        problems.append(
            f"{source} lists {', '.join(dropped)}, which this command does not run; its "
            "table would lose those rows"
        )
    elif dropped:
        problems.append(
            f"{source} {verb} {', '.join(dropped)}, which this command does not run "
            "(results.json is missing, so the stored runs count as the table); the new "
            "table would not have those rows"
        )
    losing: dict[tuple[tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for label, seeds in table.items():
        if label in planned and seeds is not None and set(seeds) - planned[label]:
            kept = tuple(s for s in seeds if s in planned[label])
            losing.setdefault((tuple(seeds), kept), []).append(label)
    for (seeds, kept), labels in losing.items():
        lost = [s for s in seeds if s not in kept]
        problems.append(
            f"{source} {verb} {', '.join(labels)} over {_seeds(seeds)}; this command runs "
            f"{_seeds(kept) if kept else 'none'} of them, so "
            f"{'that row' if len(labels) == 1 else 'those rows'} would lose {_seeds(lost)}"
        )
    if not rerun:
        for plan in plans:
            record = read_record(results_dir / "runs" / f"{plan.stem}.json")
            if record is not None and record.get("fingerprint") != plan.fingerprint(cfg):
                problems.append(
                    f"{results_dir}/runs/{plan.stem}.json was made with other settings "
                    "and would be replaced"
                )
    return problems


def _current_table(results_dir: Path) -> tuple[str, str, dict[str, Optional[list[int]]]]:
    """The current table: where it is, its verb in messages, each row's seeds (None: unknown)."""
    table = read_record(results_dir / "results.json")
    if table is not None:
        rows = {row["label"]: row.get("seeds") for row in table.get("rows", [])}
        return f"{results_dir}/results.md", "averages", rows
    stored: dict[str, list[int]] = {}
    for path in sorted((results_dir / "runs").glob("*.json")):
        record = read_record(path)
        if isinstance(record, dict) and "label" in record and "seed" in record:
            stored.setdefault(record["label"], []).append(record["seed"])
    return f"{results_dir}/runs/", "holds runs of", {k: sorted(v) for k, v in stored.items()}


def _seeds(seeds: Sequence[int]) -> str:
    """``"seed 0"`` or ``"seeds 0,1,2"``."""
    return ("seed " if len(seeds) == 1 else "seeds ") + ",".join(map(str, seeds))
