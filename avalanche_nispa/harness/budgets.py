"""Matched active-parameter budgets: every strategy's network sized to the same count.

NISPA's claim is accuracy per parameter, so a fair table also compares every
strategy at the same number of *active* parameters, counted as the tables count
them (:func:`avalanche_nispa.count_parameters` for the sparse networks: live
weights plus every bias; every trainable parameter of a dense network, with only
the output rows of trained classes). ``--budgets 16k,32k,64k,128k,full`` gives
every strategy one row per budget:

- a sparse strategy (one with a ``density`` setting: NISPA, NISPA-Replay) keeps
  its widths (the benchmark's, or its own ``hidden_sizes`` when set, e.g.
  ``--set nispa.hidden_sizes=800,800,800`` for a wider, sparser network at the
  same budget) and takes the density whose expected live weights plus biases
  make the budget;
- every other strategy (the dense baselines and PackNet, whose mask is carved
  out of a dense network) trains a narrower MLP: every hidden layer of the
  same width ``w``, the ``w`` whose parameter count is closest to the budget.

``full`` is the configured network (the row keeps its plain label). The counts
are computed from the backbone before anything runs; the table reports the
count each run measured, which for a sparse network differs from the budget by
the randomness of its masks (a fraction of a percent), and ends below it where a
layer runs out of plastic units: NISPA drops the connections from plastic into
stable units and has nowhere to regrow them (4-5 % below on the 20-task
``permuted_mnist_20x5k``). MLP backbones only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from .benchmark_config import BenchmarkConfig

__all__ = ["Budget", "budget_overrides", "dense_mlp_parameters", "parse_budgets"]

_BUDGET = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


@dataclass(frozen=True)
class Budget:
    """An active-parameter budget; ``count`` None is the configured (full) network.

    ``reference``: the budget is the active count of this strategy's configured
    (sparse) network (``as:nispa``), which keeps its own configured row.
    """

    tag: str
    count: Optional[int]
    reference: Optional[str] = None


def parse_budgets(text: str) -> list[Budget]:
    """``"16k,32k,1.5M,as:nispa,full"`` -> budgets (ValueError naming a malformed or repeated one).

    ``as:<strategy>`` is resolved by :func:`resolve_budgets` against a benchmark.
    """
    budgets: list[Budget] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item == "full":
            budgets.append(Budget("full", None))
            continue
        if item.startswith("as:") and item[3:]:
            budgets.append(Budget(item[3:], None, reference=item[3:]))
            continue
        match = _BUDGET.match(item)
        if not match:
            raise ValueError(f"a budget is a count such as 16000, 16k or 1.5M, "
                             f"as:<strategy> or 'full'; "
                             f"got {item!r}")
        scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
        budgets.append(Budget(item, int(round(float(match.group(1)) * scale))))
    tags = [b.tag for b in budgets]
    repeated = sorted({t for t in tags if tags.count(t) > 1})
    if repeated or not budgets:
        raise ValueError(f"budgets given twice: {', '.join(repeated)}" if repeated
                         else "--budgets needs at least one budget")
    return budgets


def resolve_budgets(cfg: BenchmarkConfig, budgets: Sequence[Budget]) -> list[Budget]:
    """``as:<strategy>`` budgets given the expected active count of that strategy here."""
    resolved = []
    for budget in budgets:
        if budget.reference is not None:
            if budget.reference not in cfg.strategies:
                raise ValueError(f"as:{budget.reference}: no such strategy; known: "
                                 f"{', '.join(cfg.strategies)}")
            hparams = cfg.hparams(budget.reference)
            if "density" not in hparams:
                raise ValueError(f"as:{budget.reference} names a dense strategy; a reference "
                                 "budget is a sparse network's active count (e.g. as:nispa)")
            layers = _layer_sizes(cfg, cfg.backbone.hidden_sizes)
            count = round(hparams["density"] * sum(i * o for i, o in layers)
                          + sum(o for _, o in layers))
            budget = Budget(budget.tag, count, budget.reference)
        resolved.append(budget)
    return resolved


def head_rows(cfg: BenchmarkConfig) -> int:
    """The output rows a network uses over the whole stream: one per class of each task."""
    if cfg.class_incremental or cfg.builder_name != "permuted_mnist":
        return cfg.n_classes
    return cfg.n_classes * cfg.n_experiences  # every permutation has its own 10 classes


def _layer_sizes(cfg: BenchmarkConfig, hidden: Sequence[int]) -> list[tuple[int, int]]:
    """``(in, out)`` of every linear layer of the MLP with ``hidden`` widths."""
    widths = [math.prod(cfg.backbone.input_shape), *hidden, head_rows(cfg)]
    return list(zip(widths[:-1], widths[1:]))


def dense_mlp_parameters(cfg: BenchmarkConfig, hidden: Sequence[int]) -> int:
    """Trainable parameters of the dense MLP with ``hidden`` widths, as the tables count them."""
    return sum(i * o + o for i, o in _layer_sizes(cfg, hidden))


def _sparse_density(cfg: BenchmarkConfig, budget: int,
                    hidden: Optional[Sequence[int]] = None) -> float:
    hidden = tuple(hidden or cfg.backbone.hidden_sizes)
    layers = _layer_sizes(cfg, hidden)
    weights, biases = sum(i * o for i, o in layers), sum(o for _, o in layers)
    density = (budget - biases) / weights
    if not 0.0 < density <= 1.0:
        raise ValueError(
            f"a budget of {budget:,} active parameters needs density {density:.4f} on the "
            f"{'-'.join(map(str, hidden))} network ({weights:,} weights, {biases:,} biases); "
            "choose a budget between the biases and the dense count"
        )
    return round(density, 6)


def _dense_width(cfg: BenchmarkConfig, budget: int) -> int:
    """The equal hidden width whose dense count is closest to ``budget`` (the count grows
    with the width, so the answer is the first width at or above it, or the one before)."""
    depth = len(cfg.backbone.hidden_sizes)
    count = lambda width: dense_mlp_parameters(cfg, [width] * depth)  # noqa: E731
    width = 1
    while count(width) < budget:
        width += 1
    below = max(width - 1, 1)
    return below if abs(count(below) - budget) <= abs(count(width) - budget) else width


def budget_overrides(
    cfg: BenchmarkConfig, strategy: str, budget: Budget,
    hparams: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """The settings that size ``strategy``'s network to ``budget`` (empty for ``full``);
    a sparse strategy's density is computed at its own ``hidden_sizes`` in ``hparams``
    when they set them."""
    if budget.count is None:
        return {}
    if cfg.backbone.kind != "mlp":
        raise ValueError(f"--budgets sizes MLP backbones; {cfg.name} trains a {cfg.backbone.kind}")
    if "density" in cfg.strategies[strategy].keys():
        return {"density": _sparse_density(cfg, budget.count, (hparams or {}).get("hidden_sizes"))}
    depth = len(cfg.backbone.hidden_sizes)
    return {"hidden_sizes": (_dense_width(cfg, budget.count),) * depth}


def expand_budgets(
    cfg: BenchmarkConfig, plans: Sequence[Any], budgets: Sequence[Budget]
) -> list[Any]:
    """Every plan at every budget, the rows of one strategy next to each other.

    A plan's label gains ``@<budget>`` (``ewc@32k``) except at ``full``; its
    hyperparameters gain :func:`budget_overrides`.
    """
    import dataclasses

    rows: dict[str, list[Any]] = {}
    for plan in plans:
        rows.setdefault(plan.label, []).append(plan)
    expanded = []
    for label, row in rows.items():
        for budget in resolve_budgets(cfg, budgets):
            for plan in row:
                if budget.reference == plan.strategy:
                    # the reference network is its configured row, kept once
                    if not any(b.count is None and b.reference is None for b in budgets) \
                            and plan not in expanded:
                        expanded.append(plan)
                    continue
                extra = {key: cfg.check_key(plan.strategy, key, value)
                         for key, value in budget_overrides(cfg, plan.strategy, budget,
                                                                 plan.hparams).items()}
                if not extra:
                    expanded.append(plan)
                    continue
                if _configured(cfg, plan.hparams, extra):
                    raise ValueError(
                        f"the budget {budget.tag} gives {label} its configured network, so its "
                        "runs would be the full-size runs counted again: use 'full' instead")
                expanded.append(dataclasses.replace(
                    plan, label=f"{label}@{budget.tag}", hparams={**plan.hparams, **extra}))
    return expanded


def _configured(cfg: BenchmarkConfig, hparams: dict, extra: dict) -> bool:
    """Whether ``extra`` sizes the network exactly as ``hparams`` and the backbone already do."""
    widths = tuple(hparams.get("hidden_sizes") or cfg.backbone.hidden_sizes)
    if "hidden_sizes" in extra:
        return tuple(extra["hidden_sizes"]) == widths
    return extra.get("density") == hparams.get("density")
