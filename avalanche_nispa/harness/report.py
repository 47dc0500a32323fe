"""Mean ± standard deviation across seeds, written as Markdown, CSV and JSON.

Standard deviations are sample standard deviations (ddof = 1) over the seeds
of a row; with a single seed there is none and only the mean is shown.
Accuracies are reported in percent, forgetting and BWT in percentage points.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

from avalanche_nispa.atomic import atomic_write_text

from . import strategies as registry
from .per_experience import per_experience_markdown
from .planning import file_stem
from .runner import write_json

__all__ = [
    "METRICS",
    "aggregate",
    "density_of",
    "density_sweep_rows",
    "failed_runs_text",
    "markdown_density_table",
    "markdown_table",
    "mean_std",
    "run_metrics",
    "seed_list",
    "write_density_sweep",
    "write_reports",
]

#: (key, column title, unit scale, decimals) of every aggregated metric.
METRICS: tuple[tuple[str, str, float, int], ...] = (
    ("final_accuracy", "Avg acc (%)", 100.0, 2),
    ("forgetting", "Forgetting (pp)", 100.0, 2),
    ("bwt", "BWT (pp)", 100.0, 2),
    ("active", "Active params", 1.0, 0),
    ("frozen", "Frozen params", 1.0, 0),
    ("total", "Total params", 1.0, 0),
    ("epochs", "Epochs/exp", 1.0, 1),
    ("wall_time_s", "Wall time (s)", 1.0, 1),
    ("peak_rss_delta_mb", "Peak mem Δ (MB)", 1.0, 0),
)


def mean_std(values: Iterable[Optional[float]]) -> tuple[float, float, int]:
    """Mean, sample standard deviation and count of the values that exist.

    None and NaN are left out; the mean is NaN without values and the
    standard deviation NaN with fewer than two.
    """
    present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not present:
        return math.nan, math.nan, 0
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) > 1 else math.nan
    return mean, std, len(present)


def run_metrics(run: dict[str, Any]) -> dict[str, Optional[float]]:
    """The aggregated metrics of one run record, flat."""
    epochs = run.get("epochs_per_experience") or []
    return {
        "final_accuracy": run["final_accuracy"],
        "forgetting": run.get("forgetting"),
        "bwt": run.get("bwt"),
        "active": run["parameters"]["active"],
        "frozen": run["parameters"]["frozen"],
        "total": run["parameters"]["total"],
        "epochs": statistics.fmean(epochs) if epochs else None,
        "wall_time_s": run["wall_time_s"],
        "peak_rss_delta_mb": run.get("peak_rss_delta_mb"),
    }


def _mean_matrix(matrices: Sequence[list[list[float]]]) -> list[list[float]]:
    rows, cols = len(matrices[0]), len(matrices[0][0])
    return [
        [statistics.fmean(m[i][j] for m in matrices) for j in range(cols)] for i in range(rows)
    ]


def aggregate(
    runs: Sequence[dict[str, Any]], failed: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """One row per label, in order of first appearance, with mean and std.

    Each row has ``label``, ``strategy``, ``seeds`` (the seeds it averages),
    ``n_seeds``, ``runs`` (the files of those runs, ``runs/<stem>.json``),
    ``hparams``, ``<metric>_mean`` / ``<metric>_std`` for every key of
    :data:`METRICS`, and ``accuracy_matrix_mean``.

    ``failed`` runs (:class:`~.executors.FailedRun`: ``label``, ``strategy``,
    ``seed``, ``hparams``) have no metrics; their row gets ``failed_seeds``, so
    that a table never leaves them out silently. A label whose every run failed
    is a row of its own, after the others, with no seeds and no values.

    Raises:
        ValueError: a (label, seed) pair comes twice: it would be counted twice.
    """
    by_label: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        group = by_label.setdefault(run["label"], [])
        if any(other["seed"] == run["seed"] for other in group):
            raise ValueError(f"the run {run['label']} seed {run['seed']} is given twice: "
                             "it would be counted twice in its row")
        group.append(run)
    failures: dict[str, list[Any]] = {}
    for failure in failed:
        if any(r["seed"] == failure.seed for r in by_label.get(failure.label, ())):
            raise ValueError(f"the run {failure.label} seed {failure.seed} is given as "
                             "finished and as failed")
        failures.setdefault(failure.label, []).append(failure)
        by_label.setdefault(failure.label, [])
    rows = []
    for label, group in by_label.items():
        group = sorted(group, key=lambda r: r["seed"])
        first = group[0] if group else failures[label][0].as_dict()
        row: dict[str, Any] = {
            "label": label,
            "strategy": first["strategy"],
            "seeds": [r["seed"] for r in group],
            "n_seeds": len(group),
            "runs": [f"runs/{_stem(r)}.json" for r in group],
            "hparams": first["hparams"],
        }
        flat = [run_metrics(r) for r in group]
        for key, *_ in METRICS:
            mean, std, _count = mean_std(f[key] for f in flat)
            row[f"{key}_mean"], row[f"{key}_std"] = mean, std
        row["accuracy_matrix_mean"] = (
            _mean_matrix([r["accuracy_matrix"] for r in group]) if group else None
        )
        if label in failures:
            row["failed_seeds"] = sorted(f.seed for f in failures[label])
        rows.append(row)
    return rows


def seed_list(row: dict[str, Any]) -> str:
    """The seeds a row averages, as its table shows them: ``"0,1,2"``."""
    return ",".join(map(str, row["seeds"]))


def _seeds_cell(row: dict[str, Any]) -> str:
    """The table's Seeds cell: ``"0,1"``, or ``"0,1; FAILED: 2"`` with failed runs."""
    failed = row.get("failed_seeds")
    if not failed:
        return seed_list(row)
    marker = "FAILED: " + ",".join(map(str, failed))
    return f"{seed_list(row)}; {marker}" if row["seeds"] else marker


def _format(mean: float, std: float, scale: float, decimals: int) -> str:
    if math.isnan(mean):
        return "—"
    text = f"{mean * scale:,.{decimals}f}"
    if not math.isnan(std):
        text += f" ± {std * scale:,.{decimals}f}"
    return text


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The results table, one line per row of :func:`aggregate`."""
    header = ["Strategy", "Seeds"] + [title for _, title, _, _ in METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["label"], _seeds_cell(row)]
        cells += [
            _format(row[f"{key}_mean"], row[f"{key}_std"], scale, decimals)
            for key, _, scale, decimals in METRICS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_EXPLANATION = """\
- Avg acc: test accuracy after the last experience, the unweighted mean over
  experiences (the last row of the accuracy matrix). Task-incremental: each
  experience scored with its task label; class-incremental: over all outputs.
- Forgetting / BWT: Avalanche's `StreamForgetting` / `StreamBWT` after the last
  experience: mean over earlier experiences of (accuracy just after training
  it − final accuracy), and its negative. Not defined for Joint training.
- Active params: weights and biases used by some task's prediction (dense
  baselines: all trainable ones, head rows of a head's own classes only;
  PackNet: weights owned by a trained task, plus biases; NISPA: live
  connections plus biases). Frozen: of those, the ones no longer trained.
- Epochs/exp: training epochs per experience (NISPA: phases × e, its own
  stopping rule; Joint: epochs over the union of all experiences).
- Wall time: training plus evaluation of the whole test stream after every
  experience. Peak mem Δ: highest resident set size of the process during the
  run (sampled every 50 ms) minus the size at its start.
- Each experience's final accuracy and forgetting: `per_experience.md`.
"""


def write_reports(
    rows: Sequence[dict[str, Any]],
    runs: Sequence[dict[str, Any]],
    results_dir: Path,
    *,
    title: str,
    command: str,
    context: dict[str, Any],
    extra_markdown: str = "",
    failed: Sequence[Any] = (),
) -> dict[str, Path]:
    """Write ``results.md``, ``per_experience.md``, ``results.csv``, ``runs.csv`` and
    ``results.json``.

    Args:
        rows: the output of :func:`aggregate`.
        runs: the run records the rows come from.
        results_dir: the output directory.
        title: first line of the Markdown file.
        command: the command that produced the results, quoted in the files.
        context: extra facts stored in the JSON (benchmark, backbone, ...).
        extra_markdown: a section appended to ``results.md``.
        failed: the runs that failed (:class:`~.executors.FailedRun`), listed
            with their reason under the table and in the JSON (``failed``).

    Returns:
        The paths written, by kind.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": results_dir / "results.md",
        "per_experience": results_dir / "per_experience.md",
        "csv": results_dir / "results.csv",
        "runs_csv": results_dir / "runs.csv",
        "json": results_dir / "results.json",
    }
    notes = "".join(f"- {note}\n" for note in context.get("notes", ()))
    atomic_write_text(
        paths["markdown"],
        f"# {title}\n\n```\n{command}\n```\n\n{markdown_table(rows)}\n"
        f"{failed_runs_text(failed)}{_EXPLANATION}{notes}"
        + (f"\n{extra_markdown}" if extra_markdown else ""),
    )
    atomic_write_text(paths["per_experience"], f"# {title}\n\n{per_experience_markdown(rows)}")
    keys = [key for key, *_ in METRICS]
    with _csv_file(paths["csv"]) as writer:
        writer.writerow(
            ["label", "strategy", "n_seeds", "seeds"]
            + [f"{key}_{stat}" for key in keys for stat in ("mean", "std")]
        )
        for row in rows:
            writer.writerow(
                [row["label"], row["strategy"], row["n_seeds"], " ".join(map(str, row["seeds"]))]
                + [_csv_number(row[f"{key}_{stat}"]) for key in keys for stat in ("mean", "std")]
            )
    with _csv_file(paths["runs_csv"]) as writer:
        writer.writerow(["label", "strategy", "seed", *keys, "train_time_s", "peak_rss_mb"])
        for run in sorted(runs, key=lambda r: (r["label"], r["seed"])):
            flat = run_metrics(run)
            writer.writerow(
                [run["label"], run["strategy"], run["seed"]]
                + [_csv_number(flat[key]) for key in keys]
                + [_csv_number(run.get("train_time_s")), _csv_number(run.get("peak_rss_mb"))]
            )
    write_json(
        paths["json"],
        {
            "title": title,
            "command": command,
            **context,
            "rows": [_json_row(row) for row in rows],
            "runs": [f"runs/{_stem(run)}.json" for run in runs],
            **({"failed": [f.as_dict() for f in failed]} if failed else {}),
        },
    )
    return paths


def failed_runs_text(failed: Sequence[Any]) -> str:
    """The failed runs as a Markdown list with their reasons ("" when none failed)."""
    if not failed:
        return ""
    lines = [f"- {f.label} seed {f.seed}: {f.error}\n" for f in failed]
    return ("**Failed runs** (left out of the averages; the same command runs them "
            "again):\n\n" + "".join(lines) + "\n")


@contextlib.contextmanager
def _csv_file(path: Path) -> Iterator[Any]:
    """A ``csv.writer`` whose rows reach ``path`` atomically when the block ends."""
    buffer = io.StringIO(newline="")
    yield csv.writer(buffer)
    atomic_write_text(path, buffer.getvalue())


def _stem(run: dict[str, Any]) -> str:
    return f"{file_stem(run['label'])}__seed{run['seed']}"


def _csv_number(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def density_of(row: dict[str, Any]) -> Optional[float]:
    """The density a row ran at, if its strategy is the one ``--density-sweep`` grids."""
    if not getattr(registry.find(row["strategy"]), "density_sweep", False):
        return None
    return float(row["hparams"]["density"])


def density_sweep_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The NISPA rows of ``rows``, sorted by density."""
    return sorted((r for r in rows if density_of(r) is not None), key=density_of)


def markdown_density_table(rows: Sequence[dict[str, Any]]) -> str:
    """Accuracy, forgetting and parameters against density."""
    lines = [
        "| Density | Seeds | Avg acc (%) | Forgetting (pp) | Active params | Epochs/exp |",
        "|---|---|---|---|---|---|",
    ]
    for row in density_sweep_rows(rows):
        lines.append(
            f"| {density_of(row):g} | {seed_list(row)} | "
            f"{_format(row['final_accuracy_mean'], row['final_accuracy_std'], 100.0, 2)} | "
            f"{_format(row['forgetting_mean'], row['forgetting_std'], 100.0, 2)} | "
            f"{_format(row['active_mean'], row['active_std'], 1.0, 0)} | "
            f"{_format(row['epochs_mean'], row['epochs_std'], 1.0, 1)} |"
        )
    return "\n".join(lines) + "\n"


def write_density_sweep(
    rows: Sequence[dict[str, Any]], results_dir: Path, *, title: str, command: str
) -> dict[str, Path]:
    """Write ``density_sweep.md``, ``density_sweep.csv`` and ``density_sweep.json``."""
    results_dir = Path(results_dir)
    sweep = density_sweep_rows(rows)
    paths = {
        "markdown": results_dir / "density_sweep.md",
        "csv": results_dir / "density_sweep.csv",
        "json": results_dir / "density_sweep.json",
    }
    atomic_write_text(
        paths["markdown"], f"# {title}\n\n```\n{command}\n```\n\n{markdown_density_table(sweep)}"
    )
    fields = ("final_accuracy", "forgetting", "active", "epochs")
    with _csv_file(paths["csv"]) as writer:
        writer.writerow(
            ["density", "n_seeds", "seeds"]
            + [f"{key}_{stat}" for key in fields for stat in ("mean", "std")]
        )
        for row in sweep:
            writer.writerow(
                [density_of(row), row["n_seeds"], " ".join(map(str, row["seeds"]))]
                + [_csv_number(row[f"{key}_{stat}"]) for key in fields for stat in ("mean", "std")]
            )
    write_json(
        paths["json"],
        {
            "title": title,
            "command": command,
            "rows": [{"density": density_of(r), **_json_row(r)} for r in sweep],
        },
    )
    return paths
