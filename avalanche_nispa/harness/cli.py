"""Compare NISPA with Avalanche's baselines: ``nispa-bench compare`` (``python -m benchmarks.compare`` from a clone).

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

The table holds this command's runs only: a command that would drop a row or a
seed of the directory's table (``results.json``, else the runs in ``runs/``),
or replace a run made with other settings, is refused unless ``--replace``;
anything given twice is refused. The directory is locked (``.lock``) while
the command runs; a second harness writing it is refused.

``--executor ray`` runs each run as a Ray task (:mod:`.executors.ray_executor`),
on this machine's cores or a Ray cluster; the results are the same. A run that
failed there is marked in the table and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import strategies as registry
from .comparison import ComparisonResult, run_comparison
from .configs import BENCHMARKS, STRATEGIES, BenchmarkConfig, get_config
from .executors import EXECUTORS, Executor, ExecutorError, RayNotInstalled, create_executor
from .lock import ResultsDirBusy, results_dir_lock
from .tuning import (DEFAULT_REPORTED_SEEDS, TuningPlan, choices_markdown, plan_tuning,
                     reported_plans, smaller_grids, smaller_grids_text)
from .planning import (
    RunPlan,
    apply_overrides,
    make_plans,
    parse_assignment,
    parse_value,
    refuse_same_runs,
    results_dir_conflicts,
)
from .budgets import expand_budgets, parse_budgets
from .budget_tuning import TUNE_AT, check_tune_at, tune_per_budget

__all__ = ["COMPARE_PROG", "CommandPlan", "DEFAULT_STRATEGIES", "exit_status", "main",
           "plan_command"]

#: How the command names itself in ``--help`` and in the results it writes.
COMPARE_PROG = "python -m benchmarks.compare"

#: What ``--strategies auto`` runs: the quick-start demo (entries with ``demo``).
DEFAULT_STRATEGIES = tuple(entry.name for entry in registry.entries() if entry.demo)

#: The strategy ``--density-sweep`` grids over ``density``.
DENSITY_SWEEP_STRATEGY = next(e.name for e in registry.entries() if e.density_sweep)


@dataclass
class CommandPlan:
    """What a command line asks for, resolved without running anything."""

    args: argparse.Namespace
    cfg: BenchmarkConfig
    seeds: list[int]
    plans: list[RunPlan]
    results_dir: Path
    #: ``--tune``: the validation runs and, once they are done, the choice
    #: (``plans`` are then the chosen configurations; empty before).
    tuning: Optional[TuningPlan] = None


def _parser(prog: str = COMPARE_PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Compare NISPA with Avalanche's continual-learning baselines "
        "(task-incremental; same backbone, data and seeds for all).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Strategies: " + ", ".join(STRATEGIES) + ". 'auto' = "
        + ",".join(DEFAULT_STRATEGIES) + "; 'all' = every one (both only those that "
        "support the benchmark's scenario, task- or class-incremental).",
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
    parser.add_argument(
        "--tune",
        action="store_true",
        help="choose each strategy's configuration first: every configuration of its grid "
        "(the benchmark's tuning grid, or --grid) is trained on --tune-seed without a "
        "held-out share of each training experience and scored on it; the best one is then "
        "reported on --seeds (default " + ",".join(map(str, DEFAULT_REPORTED_SEEDS)) + "), "
        "which may not include the tuning seed",
    )
    parser.add_argument(
        "--tune-seed", type=int, help="the seed --tune tunes on (default: the benchmark's, 0)"
    )
    parser.add_argument(
        "--budgets",
        metavar="B1,B2,...",
        help="every strategy at each active-parameter budget, one row each (e.g. "
        "16k,32k,64k,128k,full): sparse strategies by density, the others by a narrower "
        "dense MLP (avalanche_nispa/harness/budgets.py); with --tune, the configuration "
        "chosen at full size (see --tune-at)",
    )
    parser.add_argument(
        "--tune-at", choices=TUNE_AT,
        help="with --tune and --budgets, where a budget row's configuration is chosen: "
        "'full' (default), on the strategy's configured network, the choice used at every "
        "budget; 'budget', on each row's own network, a grid per row "
        "(avalanche_nispa/harness/budget_tuning.py)",
    )
    parser.add_argument("--rerun", action="store_true",
                        help="redo finished runs, and unfinished ones from the start")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="allow dropping rows of the results directory's table and replacing "
        "stored runs made with other settings (refused by default)",
    )
    parser.add_argument("--no-plots", action="store_true")
    where = parser.add_argument_group(
        "executor", "where the runs happen: here one after the other (default), or as "
        "Ray tasks on this machine's cores or a Ray cluster (pip install avalanche-nispa[ray])")
    where.add_argument("--executor", choices=EXECUTORS, default="sequential",
                       help="sequential (default) or ray: one Ray task per run")
    where.add_argument("--ray-address",
                       help="the Ray cluster to join: 'auto' (the one this node belongs to) or "
                       "host:port (default: $RAY_ADDRESS, else a new local instance)")
    where.add_argument("--cpus-per-run", type=int,
                       help="CPUs reserved for each run, also its torch threads (default 1)")
    where.add_argument("--gpus-per-run", type=float,
                       help="GPUs reserved for each run, e.g. 1 or 0.5 (default 0; with --device cuda)")
    where.add_argument("--max-retries", type=int,
                       help="times a run whose worker died is started again before it is "
                       "reported failed (default 2)")
    parser.add_argument(
        "--show-config", action="store_true", help="print the resolved settings and exit"
    )
    return parser


def _strategies(text: str, density_sweep: bool, cfg: BenchmarkConfig) -> list[str]:
    """The named strategies; ``auto`` and ``all`` keep those of ``cfg``'s scenario."""
    if text == "auto":
        if density_sweep:
            return [DENSITY_SWEEP_STRATEGY]
        return [s for s in DEFAULT_STRATEGIES if s in cfg.supported()]
    if text == "all":
        return list(cfg.supported())
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise SystemExit(
            f"error: unknown strategies {', '.join(unknown)}; known: {', '.join(STRATEGIES)}"
        )
    return names


def plan_command(argv: Sequence[str], prog: str = COMPARE_PROG) -> CommandPlan:
    """The configuration and run plans of a command line; nothing runs or loads data."""
    args = _parser(prog).parse_args(list(argv))
    cfg = get_config(args.benchmark)
    overrides = [(k, parse_value(v)) for k, v in args.overrides]
    if args.epochs is not None:
        overrides.append(("epochs", args.epochs))
    try:
        cfg = apply_overrides(cfg, overrides)
    except (ValueError, TypeError) as err:
        raise SystemExit(f"error: {err}") from None
    strategies = _strategies(args.strategies, bool(args.density_sweep), cfg)
    grids = list(args.grid)
    if args.density_sweep:
        grids.append((f"{DENSITY_SWEEP_STRATEGY}.density", args.density_sweep))
    seeds = list(DEFAULT_REPORTED_SEEDS if args.tune else cfg.default_seeds)
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results_dir = args.results_dir or Path("results_tmp") / cfg.name
    if args.tune_seed is not None and not args.tune:
        raise SystemExit("error: --tune-seed is the seed of --tune; add --tune or drop it")
    if args.tune and args.density_sweep:
        raise SystemExit("error: --tune chooses one configuration per strategy and "
                         "--density-sweep reports several; run them as two commands")
    tuning = None
    try:
        per_row = check_tune_at(args.tune_at, args.tune, args.budgets)
        if args.tune:
            tune_seed = cfg.tune_seed if args.tune_seed is None else args.tune_seed
            tuning = plan_tuning(cfg, strategies, grids, tune_seed, seeds, results_dir)
            if per_row:
                tuning = tune_per_budget(cfg, tuning, parse_budgets(args.budgets))
            plans = reported_plans(cfg, tuning.choices or [], seeds)
        else:
            plans = make_plans(cfg, strategies, seeds, grids)
        if args.budgets:
            if not per_row:  # per row: the rows are sized already
                plans = expand_budgets(cfg, plans, parse_budgets(args.budgets))
            refuse_same_runs(cfg, plans)
    except (ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        raise SystemExit(f"error: {message}") from None
    return CommandPlan(args, cfg, seeds, plans, results_dir, tuning)


def main(
    argv: Optional[Sequence[str]] = None, prog: str = COMPARE_PROG
) -> Optional[ComparisonResult]:
    """The command line; returns the comparison (None with ``--show-config``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    planned = plan_command(argv, prog)
    args, cfg, plans, results_dir = planned.args, planned.cfg, planned.plans, planned.results_dir
    if args.show_config:
        shown: dict = {"benchmark": cfg.name, "backbone": dataclasses.asdict(cfg.backbone),
                       "seeds": planned.seeds,
                       "strategies": {plan.label: plan.hparams for plan in plans}}
        if planned.tuning is not None:
            shown["tuning"] = {"seed": planned.tuning.tune_seed, "grids": planned.tuning.grids,
                               "runs": {p.label: p.hparams for p in planned.tuning.plans}}
        print(json.dumps(shown, indent=2, default=repr))
        return None

    try:
        executor = create_executor(
            args.executor, device=args.device, data_root=args.data_root,
            ray_address=args.ray_address, cpus_per_run=args.cpus_per_run,
            gpus_per_run=args.gpus_per_run, max_retries=args.max_retries,
        )
    except (ValueError, RayNotInstalled) as err:
        raise SystemExit(f"error: {err}") from None

    import torch

    threads = args.threads or cfg.threads
    if threads:
        torch.set_num_threads(threads)
    command = f"{prog} " + " ".join(shlex.quote(a) for a in argv)
    try:
        # locked from the overwrite check on: nobody else changes what it checked
        with results_dir_lock(results_dir, command):
            result = _run(planned, command, executor)
    except ResultsDirBusy as err:
        raise SystemExit(f"error: {err}") from None
    from .report import failed_runs_text, markdown_density_table, markdown_table

    print(f"{cfg.description}\n")
    print(markdown_table(result.rows))
    if args.density_sweep:
        print(markdown_density_table(result.rows))
    done, skipped = len(result.outcome.executed), len(result.outcome.skipped)
    failed = result.outcome.failed
    if failed:
        print(failed_runs_text(failed), end="")
    print(f"{done} run(s) done, {skipped} already finished"
          + (f", {len(failed)} FAILED (the same command runs them again)" if failed else "")
          + f"; results in {results_dir}/")
    return result


def exit_status(result: Optional[ComparisonResult]) -> int:
    """The command's exit status: 1 when a run failed, else 0."""
    return 1 if result is not None and result.outcome.failed else 0


def _refuse_conflicts(conflicts: list[str], replace: bool, done: str = "nothing was run") -> None:
    if conflicts and not replace:
        raise SystemExit(
            f"error: {done}, because this command would overwrite results:\n  - "
            + "\n  - ".join(conflicts)
            + "\nUse another --results-dir, add the missing strategies, seeds or grid values "
            "(the finished runs are reused), or pass --replace to overwrite."
        )


def _run(planned: CommandPlan, command: str, executor: Executor) -> ComparisonResult:
    """Refuse to overwrite results unless asked, then run the comparison (tuning first)."""
    import torch

    from . import runner

    args, cfg, results_dir = planned.args, planned.cfg, planned.results_dir
    tuning = planned.tuning
    load = lambda seed: runner.load_benchmark(cfg, seed, root=args.data_root)  # noqa: E731
    common = {"device": args.device, "rerun": args.rerun, "plots": not args.no_plots,
              "command": command, "executor": executor}
    context = {"seeds": planned.seeds, "device": args.device, "threads": torch.get_num_threads()}
    extra_markdown = ""
    try:
        if tuning is not None:
            smaller = smaller_grids(cfg, tuning.grids)
            if smaller:
                print(f"warning: {smaller_grids_text(smaller)}", file=sys.stderr)
            _refuse_conflicts(
                results_dir_conflicts(cfg, tuning.plans, tuning.directory, rerun=args.rerun),
                args.replace,
            )
            from .validation import validation_benchmark

            tuned = run_comparison(
                cfg, tuning.plans, results_dir=tuning.directory,
                benchmark_factory=lambda seed: validation_benchmark(
                    load(seed), cfg.validation_fraction, seed),
                title=f"Tuning on a validation split (seed {tuning.tune_seed}): "
                f"{cfg.description}",
                extra_context={**context, "seeds": [tuning.tune_seed],
                               "evaluation": "validation",
                               "validation_fraction": cfg.validation_fraction},
                **common,
            )
            if tuned.outcome.failed:
                from .report import failed_runs_text

                raise SystemExit(
                    f"error: {len(tuned.outcome.failed)} tuning run(s) failed, so no "
                    f"configuration was chosen and no reported run was started:\n"
                    f"{failed_runs_text(tuned.outcome.failed)}The same command runs them again.")
            choices = tuning.settle(cfg)
            assert choices is not None, "every tuning run has finished"
            planned.plans = reported_plans(cfg, choices, planned.seeds)
            if args.budgets and tuning.rows is None:
                planned.plans = expand_budgets(cfg, planned.plans, parse_budgets(args.budgets))
            extra_markdown = choices_markdown(choices, tuning.tune_seed, cfg.validation_fraction,
                                              smaller)
            context["tuning"] = {
                "tune_seed": tuning.tune_seed,
                "validation_fraction": cfg.validation_fraction,
                "choices": [choice.as_dict() for choice in choices],
            }
        _refuse_conflicts(
            results_dir_conflicts(cfg, planned.plans, results_dir, rerun=args.rerun),
            args.replace,
            done="the tuning runs are stored, but no reported run was started"
            if tuning is not None else "nothing was run",
        )
        return run_comparison(
            cfg, planned.plans, results_dir=results_dir, benchmark_factory=load,
            density_sweep=bool(args.density_sweep), extra_context=context,
            extra_markdown=extra_markdown, **common,
        )
    except (FileNotFoundError, ExecutorError) as err:  # no data; no Ray cluster there
        raise SystemExit(f"error: {err}") from None
