"""Compare NISPA with Avalanche's baselines: ``python -m benchmarks.compare``.

Examples::

    # the default demo: bundled 8x8 digits, no download
    python -m benchmarks.compare
    # the paper's MLP on Split Fashion-MNIST, three seeds
    python -m benchmarks.compare --benchmark split_fmnist \\
        --strategies nispa,naive,ewc,si,mas,lwf,replay,agem,gem,packnet,joint --seeds 0,1,2
    # "sparsity is necessary": NISPA's accuracy against density
    python -m benchmarks.compare --benchmark split_fmnist --strategies nispa \\
        --density-sweep 0.05,0.1,0.2,0.5,1.0
    # a small λ grid for EWC
    python -m benchmarks.compare --benchmark split_mnist --strategies ewc \\
        --grid ewc.ewc_lambda=1e4,1e5,1e6
    # NISPA as configured and with a larger accuracy-drop threshold
    python -m benchmarks.compare --benchmark permuted_mnist_10k --strategies nispa \\
        --grid nispa.accuracy_drop_threshold=default,2.5

Results go to ``--results-dir`` (default ``results_tmp/<benchmark>``):
``results.md`` / ``results.csv`` / ``results.json`` (mean ± std across seeds),
``runs.csv`` and ``runs/<label>__seed<k>.json`` (one file per run; a re-run
skips the runs already there), ``logs/`` (Avalanche's text logs) and
``plots/``. With ``--density-sweep`` also ``density_sweep.{md,csv,json}``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import itertools
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .configs import BENCHMARKS, STRATEGIES, TRAINING_KEYS, BenchmarkConfig, get_config

__all__ = [
    "ComparisonResult",
    "DEFAULT_STRATEGIES",
    "apply_overrides",
    "main",
    "make_plans",
    "parse_assignment",
    "run_comparison",
]

#: What ``--strategies auto`` runs: the quick-start demo (NISPA when available).
DEFAULT_STRATEGIES = ("nispa", "naive", "ewc", "si", "replay")


@dataclass
class ComparisonResult:
    """The sweep's outcome, the aggregated rows and the files written."""

    outcome: Any
    rows: list[dict[str, Any]]
    paths: dict[str, Any]


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
    """``cfg`` with settings replaced.

    Keys: ``epochs`` / ``lr`` / any common training key (all strategies that
    do not set it themselves), ``<strategy>.<key>`` (that strategy only),
    ``backbone.<field>`` (the shared network).
    """
    training = dict(cfg.training)
    strategies = {name: dict(values) for name, values in cfg.strategies.items()}
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
            training[key] = value
        elif head == "backbone":
            if tail == "hidden_sizes" and isinstance(value, int):
                value = (value,)
            backbone = dataclasses.replace(backbone, **{tail: value})
        elif head in strategies:
            strategies[head][tail] = value
        else:
            raise ValueError(
                f"cannot set {key!r}: {head!r} is neither 'backbone' nor a strategy "
                f"({', '.join(strategies)})"
            )
    return dataclasses.replace(cfg, training=training, strategies=strategies, backbone=backbone)


#: Keys ``--set KEY=VALUE`` may give every strategy: the training settings, and
#: the SGD momentum that the dense baselines' optimizer reads.
SHARED_KEYS = (*TRAINING_KEYS, "momentum")

#: A grid value meaning "the benchmark's configured value" (row without a suffix).
GRID_DEFAULT = "default"


def _grid_label(strategy: str, assignment: dict[str, str]) -> str:
    inner = ",".join(f"{k}={v}" for k, v in assignment.items())
    return f"{strategy}({inner})"


def make_plans(
    cfg: BenchmarkConfig,
    strategies: Sequence[str],
    seeds: Sequence[int],
    grids: Sequence[tuple[str, str]] = (),
) -> list:
    """One run plan per (strategy or grid variant, seed), strategies in order.

    Args:
        grids: ``("<strategy>.<key>", "v1,v2,...")`` pairs; a strategy with grids
            runs every combination of its values instead of its configuration.
            The value ``default`` stands for the configured value, so that
            ``nispa.lr=default,0.003`` gives the rows ``nispa`` (the same runs
            as without a grid) and ``nispa(lr=0.003)``. A strategy named only
            in a grid is added to ``strategies``.
    """
    from .runner import RunPlan

    per_strategy: dict[str, dict[str, list[str]]] = {}
    for key, values in grids:
        strategy, _, field = key.partition(".")
        if strategy not in STRATEGIES or not field:
            raise ValueError(f"a grid key must be <strategy>.<key>, got {key!r}")
        per_strategy.setdefault(strategy, {})[field] = [v for v in values.split(",") if v]
    order = list(strategies) + [s for s in per_strategy if s not in strategies]
    plans = []
    for strategy in order:
        grid = per_strategy.get(strategy)
        if grid:
            fields = list(grid)
            variants = [dict(zip(fields, combo)) for combo in itertools.product(*grid.values())]
        else:
            variants = [{}]
        for variant in variants:
            variant = {k: v for k, v in variant.items() if v != GRID_DEFAULT}
            overrides = {k: parse_value(v) for k, v in variant.items()}
            hparams = cfg.hparams(strategy, overrides)
            label = _grid_label(strategy, variant) if variant else strategy
            plans += [RunPlan(label, strategy, seed, hparams) for seed in seeds]
    return plans


def results_dir_conflicts(
    cfg: BenchmarkConfig, plans: Sequence[Any], results_dir: Path, *, rerun: bool = False
) -> list[str]:
    """What running ``plans`` into ``results_dir`` would replace without being asked.

    Two things: the rows of the directory's current table that these plans do
    not produce (the table is rewritten from this command's runs only), and,
    unless ``rerun``, stored runs with the same file name but other settings
    (a finished run is kept only while its settings match).
    """
    from .runner import read_record

    problems = []
    table = read_record(Path(results_dir) / "results.json")
    if table is not None:
        wanted = {plan.label for plan in plans}
        dropped = [row["label"] for row in table.get("rows", []) if row["label"] not in wanted]
        if dropped:
            problems.append(
                f"{results_dir}/results.md lists {', '.join(dropped)}, which this "
                "command does not run; its table would lose those rows"
            )
    if not rerun:
        for plan in plans:
            record = read_record(Path(results_dir) / "runs" / f"{plan.stem}.json")
            if record is not None and record.get("fingerprint") != plan.fingerprint(cfg):
                problems.append(
                    f"{results_dir}/runs/{plan.stem}.json was made with other settings "
                    "and would be replaced"
                )
    return problems


def run_comparison(
    cfg: BenchmarkConfig,
    plans: Sequence[Any],
    *,
    results_dir: Path,
    benchmark_factory: Any,
    device: str = "cpu",
    rerun: bool = False,
    plots: bool = True,
    density_sweep: bool = False,
    command: str = "",
    progress: Optional[bool] = None,
    extra_context: Optional[dict[str, Any]] = None,
) -> ComparisonResult:
    """Run (or resume) the plans, then write the reports and the plots."""
    from .report import aggregate, write_density_sweep, write_reports
    from .runner import run_sweep

    results_dir = Path(results_dir)
    outcome = run_sweep(
        cfg,
        plans,
        results_dir=results_dir,
        benchmark_factory=benchmark_factory,
        device=device,
        rerun=rerun,
        progress=progress,
    )
    rows = aggregate(outcome.results)
    run_notes = sorted({f"{r['label']}: {note}" for r in outcome.results for note in r["notes"]})
    context = {
        "benchmark": cfg.name,
        "description": cfg.description,
        "backbone": dataclasses.asdict(cfg.backbone),
        "training": cfg.training,
        "notes": list(cfg.notes) + run_notes,
        **(extra_context or {}),
    }
    title = f"{cfg.description}"
    paths: dict[str, Any] = dict(
        write_reports(
            rows, outcome.results, results_dir, title=title, command=command, context=context
        )
    )
    if density_sweep:
        sweep_paths = write_density_sweep(
            rows, results_dir, title=f"NISPA density sweep: {cfg.description}", command=command
        )
        paths.update({f"density_{k}": v for k, v in sweep_paths.items()})
    if plots:
        from .plots import plot_all

        paths["plots"] = plot_all(
            rows, outcome.results, results_dir / "plots", density_sweep=density_sweep
        )
    return ComparisonResult(outcome, rows, paths)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description="Compare NISPA with Avalanche's continual-learning baselines "
        "(task-incremental; same backbone, data and seeds for all).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Strategies: " + ", ".join(STRATEGIES) + ". 'auto' = "
        + ",".join(DEFAULT_STRATEGIES) + " (nispa only when installed); 'all' = every one.",
    )
    parser.add_argument("--benchmark", default="split_digits", choices=list(BENCHMARKS))
    parser.add_argument(
        "--strategies",
        default="auto",
        help="comma-separated list, 'auto' or 'all' (default: auto)",
    )
    parser.add_argument("--seeds", help="comma-separated seeds (default: the benchmark's, 0,1,2)")
    parser.add_argument("--epochs", type=int, help="epochs per experience for every baseline")
    parser.add_argument("--results-dir", type=Path, help="default: results_tmp/<benchmark>")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: 1 on split_digits, else torch's)"
    )
    parser.add_argument("--data-root", help="data set root passed to the benchmark builder")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=parse_assignment,
        metavar="KEY=VALUE",
        help="override a setting: lr=0.01, ewc.ewc_lambda=1e5, backbone.hidden_sizes=256,256",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        type=parse_assignment,
        metavar="STRATEGY.KEY=V1,V2",
        help="run every value (one row each), e.g. ewc.ewc_lambda=1e4,1e5,1e6; "
        "'default' is the configured value (its row keeps the plain name)",
    )
    parser.add_argument(
        "--density-sweep",
        metavar="D1,D2,...",
        help="NISPA at each density (table and plot), e.g. 0.05,0.1,0.2,0.5,1.0",
    )
    parser.add_argument("--rerun", action="store_true", help="redo runs already finished")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="allow dropping rows of the results directory's table and replacing "
        "stored runs made with other settings (refused by default)",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--show-config", action="store_true", help="print the resolved settings and exit"
    )
    return parser


def _strategies(text: str, density_sweep: bool) -> list[str]:
    from .strategies import nispa_available

    if text == "auto":
        if density_sweep:
            return ["nispa"]
        available, why = nispa_available()
        if not available:
            print(f"note: {why}; running the baselines alone.", file=sys.stderr)
        return [s for s in DEFAULT_STRATEGIES if s != "nispa" or available]
    if text == "all":
        return list(STRATEGIES)
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise SystemExit(
            f"error: unknown strategies {', '.join(unknown)}; known: {', '.join(STRATEGIES)}"
        )
    return names


def main(argv: Optional[Sequence[str]] = None) -> ComparisonResult | None:
    """The command line; returns the comparison (None with ``--show-config``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from .strategies import StrategyNotAvailable, nispa_available

    cfg = get_config(args.benchmark)
    overrides = [(k, parse_value(v)) for k, v in args.overrides]
    if args.epochs is not None:
        overrides.append(("epochs", args.epochs))
    try:
        cfg = apply_overrides(cfg, overrides)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"error: {err}") from None
    strategies = _strategies(args.strategies, bool(args.density_sweep))
    grids = list(args.grid)
    if args.density_sweep:
        grids.append(("nispa.density", args.density_sweep))
    seeds = list(cfg.default_seeds)
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    try:
        plans = make_plans(cfg, strategies, seeds, grids)
    except (ValueError, KeyError) as err:
        raise SystemExit(f"error: {err}") from None
    if args.show_config:
        import json

        shown = {plan.label: plan.hparams for plan in plans}
        print(json.dumps({"benchmark": cfg.name, "backbone": dataclasses.asdict(cfg.backbone),
                          "seeds": seeds, "strategies": shown}, indent=2, default=repr))
        return None
    if any(plan.strategy == "nispa" for plan in plans):
        available, why = nispa_available()
        if not available:
            raise SystemExit(
                f"error: {why}. Leave 'nispa' out of --strategies to compare the "
                "baselines alone, e.g. --strategies naive,ewc,si,replay."
            )

    import torch

    from .runner import load_benchmark

    threads = args.threads or cfg.threads
    if threads:
        torch.set_num_threads(threads)
    results_dir = args.results_dir or Path("results_tmp") / cfg.name
    conflicts = results_dir_conflicts(cfg, plans, results_dir, rerun=args.rerun)
    if conflicts and not args.replace:
        raise SystemExit(
            "error: nothing was run, because this command would overwrite results:\n  - "
            + "\n  - ".join(conflicts)
            + "\nUse another --results-dir, add the missing strategies or grid values "
            "(the finished runs are reused), or pass --replace to overwrite."
        )
    command = "python -m benchmarks.compare " + " ".join(shlex.quote(a) for a in argv)
    try:
        result = run_comparison(
            cfg,
            plans,
            results_dir=results_dir,
            benchmark_factory=lambda seed: load_benchmark(cfg, seed, root=args.data_root),
            device=args.device,
            rerun=args.rerun,
            plots=not args.no_plots,
            density_sweep=bool(args.density_sweep),
            command=command,
            extra_context={
                "seeds": seeds,
                "device": args.device,
                "threads": torch.get_num_threads(),
            },
        )
    except (FileNotFoundError, StrategyNotAvailable) as err:
        raise SystemExit(f"error: {err}") from None
    from .report import markdown_density_table, markdown_table

    print(f"{cfg.description}\n")
    print(markdown_table(result.rows))
    if args.density_sweep:
        print(markdown_density_table(result.rows))
    done, skipped = len(result.outcome.executed), len(result.outcome.skipped)
    print(f"{done} run(s) done, {skipped} already finished; results in {results_dir}/")
    return result


if __name__ == "__main__":
    main()
