"""PNG figures of a comparison: accuracy matrices, accuracy against parameters,
NISPA's unit states, and accuracy against density.

Figures are drawn with matplotlib's object API on the Agg canvas, so nothing
depends on a display or on pyplot's global state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from avalanche_nispa.atomic import atomic_write

from . import strategies as registry
from .planning import file_stem
from .report import density_of, density_sweep_rows

__all__ = [
    "plot_accuracy_matrix",
    "plot_accuracy_vs_parameters",
    "plot_all",
    "plot_density_sweep",
    "plot_final_accuracy_per_experience",
    "plot_unit_states",
]

_STATE_COLOURS = {"stable": "#1b6ca8", "candidate": "#f2a541", "plastic": "#c8d3dc"}


def _styles(n: int) -> list[dict[str, Any]]:
    """``n`` distinguishable line styles: tab10's colours up to 10 lines, tab20's up to
    20, then dashed lines in the same colours (the default cycle repeats after 10)."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if n <= 10 else "tab20"].colors
    return [{"color": palette[i % len(palette)], "linestyle": "-" if i < len(palette) else "--"}
            for i in range(n)]


def _save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG atomically: a reader never sees half an image."""
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120))


def _save_accuracy_plot(fig: Figure, ax: Any, path: Path, xlabel: str, title: str) -> Path:
    """Label a final-accuracy plot, save it and return its path."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("final average task accuracy (%)")
    ax.set_title(f"{title} (mean ± std over seeds)")
    ax.grid(True, alpha=0.3)
    _save(fig, path)
    return path


def plot_accuracy_matrix(row: dict[str, Any], path: Path) -> Path:
    """Heatmap of one row's mean accuracy matrix (%), future tasks left blank."""
    matrix = [[100.0 * v for v in line] for line in row["accuracy_matrix_mean"]]
    joint = len(matrix) == 1 and len(matrix[0]) > 1
    shown = [
        [v if (joint or j <= i) else math.nan for j, v in enumerate(line)]
        for i, line in enumerate(matrix)
    ]
    n_rows, n_cols = len(shown), len(shown[0])
    fig = Figure(figsize=(1.0 + 0.6 * n_cols, 1.2 + 0.5 * n_rows), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shown, vmin=0.0, vmax=100.0, cmap="viridis", aspect="auto")
    for i in range(n_rows):
        for j in range(n_cols):
            if not math.isnan(shown[i][j]) and n_cols <= 20:
                value = shown[i][j]
                colour = "black" if value > 60 else "white"
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("test experience")
    ax.set_ylabel("after the union" if joint else "after training experience")
    ax.set_xticks(range(n_cols))
    ax.set_yticks(range(n_rows))
    seeds = row["n_seeds"]
    ax.set_title(f"{row['label']}: accuracy (%), mean of {seeds} seed{'s' * (seeds > 1)}")
    fig.colorbar(image, ax=ax, shrink=0.8)
    _save(fig, path)
    return path


def plot_accuracy_vs_parameters(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Final average accuracy against active parameters, one point per row.

    Rows of one strategy at several sizes (``--budgets``: ``ewc@16k``, ``ewc@32k``,
    ``ewc``) are one line, labelled once with the strategy's row name.
    """
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")  # room for the legend
    ax = fig.subplots()
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        lines.setdefault(row["label"].split("@")[0], []).append(row)
    for (name, members), style in zip(lines.items(), _styles(len(lines))):
        members = sorted(members, key=lambda r: r["active_mean"])
        xs = [r["active_mean"] for r in members]
        ys = [100.0 * r["final_accuracy_mean"] for r in members]
        xerr = [0.0 if math.isnan(r["active_std"]) else r["active_std"] for r in members]
        yerr = [0.0 if math.isnan(r["final_accuracy_std"]) else 100.0 * r["final_accuracy_std"]
                for r in members]
        marker = getattr(registry.find(members[0]["strategy"]), "plot_marker", "o")
        single = len(members) == 1  # a sparse strategy's one configured network: on top
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt=marker,  # the line: style's linestyle
                    markersize=11 if single else 7, capsize=3, label=name,
                    markeredgecolor="black" if single else style["color"],
                    zorder=3 if single else 2, **style)
        if len(members) == 1:
            ax.annotate(name, (xs[0], ys[0]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
    if any(len(members) > 1 for members in lines.values()):
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xscale("log")
    _parameter_ticks(ax, [r["active_mean"] for r in rows])
    return _save_accuracy_plot(
        fig, ax, path, "active parameters (log scale)", "Accuracy against parameter budget"
    )


def _parameter_ticks(ax: Any, counts: Sequence[float]) -> None:
    """Label the log axis at 1-2-5 steps as '16k'-style counts, without minor labels
    (matplotlib's own minor labels overlap between 2e4 and 5e5)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    finite = [c for c in counts if c > 0 and math.isfinite(c)]
    if not finite:
        return
    low, high = min(finite) / 1.5, max(finite) * 1.5
    steps = [m * 10.0 ** e for e in range(0, 10) for m in (1, 2, 5)]
    ax.xaxis.set_major_locator(FixedLocator([t for t in steps if low <= t <= high]))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k" if x >= 1e3 else f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_final_accuracy_per_experience(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Each experience's accuracy after the last one, one line per row (the mean
    accuracy matrix's last row): where forgetting or a lack of capacity shows."""
    fig = Figure(figsize=(8.0, 4.4), layout="constrained")  # room for the legend
    ax = fig.subplots()
    for row, style in zip(rows, _styles(len(rows))):
        final = [100.0 * v for v in row["accuracy_matrix_mean"][-1]]
        marker = getattr(registry.find(row["strategy"]), "plot_marker", "o")
        ax.plot(range(len(final)), final, marker=marker, label=row["label"], **style)
    ax.set_xlabel("experience")
    ax.set_ylabel("final accuracy (%)")
    ax.set_title("Final accuracy per experience (mean over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)
    return path


def plot_unit_states(run: dict[str, Any], path: Path) -> Path:
    """NISPA's stable / candidate / plastic units per layer after each task,
    and the phases and final τ of each task."""
    states = run["nispa"]["unit_states"]
    history = run["nispa"].get("phase_history") or []
    by_layer = [{entry["layer"]: entry for entry in after_task} for after_task in states]
    first = by_layer[0] if by_layer else {}
    layers = [name for name in first if all(name in b for b in by_layer)]
    # hidden layers only when there are any: heads are one per task and small
    layers = [name for name in layers if not str(name).startswith("heads")] or layers
    n_panels = len(layers) + (1 if history else 0)
    fig = Figure(figsize=(3.2 * max(n_panels, 1), 3.4), layout="constrained")
    axes = fig.subplots(1, max(n_panels, 1), squeeze=False)[0]
    tasks = list(range(len(states)))
    for k, layer in enumerate(layers):
        ax, bottom = axes[k], [0.0] * len(tasks)
        for state, colour in _STATE_COLOURS.items():
            heights = [float(by_layer[t][layer][state]) for t in tasks]
            ax.bar(tasks, heights, bottom=bottom, color=colour, label=state)
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.set_title(str(layer), fontsize=9)
        ax.set_xlabel("after task")
        ax.set_xticks(tasks)
        if k == 0:
            ax.set_ylabel("units")
            ax.legend(fontsize=7)
    if history:
        ax = axes[-1]
        phases = [_phase_count(entry) for entry in history]
        ax.bar(range(len(phases)), phases, color="#7a9e7e")
        ax.set_xlabel("task")
        ax.set_ylabel("phases")
        ax.set_xticks(range(len(phases)))
        taus = [entry.get("final_tau") for entry in history]
        if all(isinstance(t, (int, float)) for t in taus):
            twin = ax.twinx()
            twin.plot(range(len(taus)), taus, "k.-")
            twin.set_ylabel("final τ")
        ax.set_title("phases, final τ", fontsize=9)
    fig.suptitle(f"{run['label']} (seed {run['seed']}): unit states")
    _save(fig, path)
    return path


def _phase_count(entry: dict[str, Any]) -> float:
    phases = entry.get("phases")
    if isinstance(phases, (list, tuple)):
        return float(len(phases))
    return float(phases or 0)


def plot_density_sweep(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """NISPA's final average accuracy against density, with active parameters."""
    sweep = density_sweep_rows(rows)
    densities = [density_of(r) for r in sweep]
    accuracy = [100.0 * r["final_accuracy_mean"] for r in sweep]
    errors = [
        0.0 if math.isnan(r["final_accuracy_std"]) else 100.0 * r["final_accuracy_std"]
        for r in sweep
    ]
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.errorbar(densities, accuracy, yerr=errors, fmt="o-", capsize=3)
    for d, a, r in zip(densities, accuracy, sweep):
        ax.annotate(
            f"{r['active_mean']:,.0f} params",
            (d, a),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=7,
        )
    ax.set_xscale("log")
    ax.set_xticks(densities)
    ax.set_xticklabels([f"{d:g}" for d in densities])
    return _save_accuracy_plot(
        fig, ax, path, "density (fraction of connections)", "NISPA: accuracy against density"
    )


def plot_all(
    rows: Sequence[dict[str, Any]],
    runs: Sequence[dict[str, Any]],
    plots_dir: Path,
    *,
    density_sweep: bool = False,
) -> list[Path]:
    """Every figure of a comparison, in ``plots_dir``; returns the files written."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    written = [
        plot_accuracy_matrix(row, plots_dir / f"accuracy_matrix_{file_stem(row['label'])}.png")
        for row in rows
    ]
    written.append(plot_accuracy_vs_parameters(rows, plots_dir / "accuracy_vs_parameters.png"))
    written.append(plot_final_accuracy_per_experience(
        rows, plots_dir / "final_accuracy_per_experience.png"))
    first_nispa_runs: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r["seed"]):
        if run.get("nispa") and run["nispa"].get("unit_states"):
            first_nispa_runs.setdefault(run["label"], run)
    for label, run in first_nispa_runs.items():
        written.append(plot_unit_states(run, plots_dir / f"unit_states_{file_stem(label)}.png"))
    if density_sweep and density_sweep_rows(rows):
        written.append(plot_density_sweep(rows, plots_dir / "density_sweep.png"))
    return written
