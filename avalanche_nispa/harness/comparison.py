"""Run (or resume) a set of planned runs, then write the tables and the plots."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .configs import BenchmarkConfig
from .lock import results_dir_lock
from .planning import RunPlan
from .report import aggregate, write_density_sweep, write_reports
from .runner import BenchmarkFactory, SweepOutcome, run_sweep

__all__ = ["ComparisonResult", "run_comparison"]


@dataclass
class ComparisonResult:
    """The sweep's outcome, the aggregated rows and the files written."""

    outcome: SweepOutcome
    rows: list[dict[str, Any]]
    paths: dict[str, Any]


def run_comparison(
    cfg: BenchmarkConfig,
    plans: Sequence[RunPlan],
    *,
    results_dir: Path,
    benchmark_factory: BenchmarkFactory,
    plots: bool = True,
    density_sweep: bool = False,
    command: str = "",
    extra_context: Optional[dict[str, Any]] = None,
    title: Optional[str] = None,
    extra_markdown: str = "",
    **sweep: Any,
) -> ComparisonResult:
    """Run the plans not already finished, then write the reports (and plots).

    ``title`` heads ``results.md`` (default: the benchmark's description);
    ``extra_markdown`` is appended to it (e.g. what ``--tune`` chose).

    ``sweep`` (``device``, ``rerun``, ``progress``, ``progress_stream``,
    ``executor``) goes to :func:`~.runner.run_sweep` as is; failed runs are
    marked in the tables. The results directory is locked from the
    first run to the last plot (:mod:`.lock`).

    Raises:
        ResultsDirBusy: another harness is writing ``results_dir``.
    """
    results_dir = Path(results_dir)
    with results_dir_lock(results_dir, command):
        return _run_locked(
            cfg, plans, results_dir, benchmark_factory, plots=plots, density_sweep=density_sweep,
            command=command, extra_context=extra_context, title=title or cfg.description,
            extra_markdown=extra_markdown, **sweep,
        )


def _run_locked(
    cfg: BenchmarkConfig,
    plans: Sequence[RunPlan],
    results_dir: Path,
    benchmark_factory: BenchmarkFactory,
    *,
    plots: bool,
    density_sweep: bool,
    command: str,
    extra_context: Optional[dict[str, Any]],
    title: str,
    extra_markdown: str,
    **sweep: Any,
) -> ComparisonResult:
    outcome = run_sweep(
        cfg, plans, results_dir=results_dir, benchmark_factory=benchmark_factory, **sweep
    )
    rows = aggregate(outcome.results, outcome.failed)
    run_notes = sorted({f"{r['label']}: {note}" for r in outcome.results for note in r["notes"]})
    context = {
        "benchmark": cfg.name,
        "description": cfg.description,
        "backbone": dataclasses.asdict(cfg.backbone),
        "training": cfg.training.as_dict(),
        "notes": list(cfg.notes) + run_notes,
        **(extra_context or {}),
    }
    paths: dict[str, Any] = dict(
        write_reports(
            rows, outcome.results, results_dir, title=title, command=command,
            context=context, extra_markdown=extra_markdown, failed=outcome.failed,
        )
    )
    if density_sweep:
        sweep_paths = write_density_sweep(
            rows, results_dir, title=f"NISPA density sweep: {cfg.description}", command=command
        )
        paths.update({f"density_{k}": v for k, v in sweep_paths.items()})
    if plots:
        from .plots import plot_all

        paths["plots"] = plot_all(  # a row whose every run failed has nothing to plot
            [row for row in rows if row["n_seeds"]], outcome.results, results_dir / "plots",
            density_sweep=density_sweep,
        )
    return ComparisonResult(outcome, rows, paths)
