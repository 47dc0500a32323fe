"""``nispa-bench collect``: one table and one per-experience plot from rows of several
committed results directories, e.g. NISPA's options, each measured by its own command
(issue 15: accuracy, forgetting, active parameters and wall time side by side).

Nothing is trained: each source is a results directory's ``results.json`` and a row
label in it. The output directory gets ``collected.md`` (the table, with the command
that made it and each row's source command) and ``final_accuracy_per_experience.png``.
It is never named ``results.md``: a collection has no runs of its own to re-plan.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from avalanche_nispa.atomic import atomic_write_text

from .plots import plot_final_accuracy_per_experience

__all__ = ["Source", "collect", "main", "parse_source"]


class Source:
    """``NAME=DIR:LABEL``: the row ``LABEL`` of ``DIR/results.json``, shown as ``NAME``."""

    def __init__(self, name: str, directory: Path, label: str) -> None:
        self.name, self.directory, self.label = name, Path(directory), label

    def load(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The results document and its row; a clear error when either is missing."""
        path = self.directory / "results.json"
        if not path.is_file():
            raise ValueError(f"{self.name!r}: {path} does not exist; give a results directory "
                             "that benchmarks.compare finished (it writes results.json)")
        document = json.loads(path.read_text())
        rows = {row["label"]: row for row in document["rows"]}
        if self.label not in rows:
            raise ValueError(f"{self.name!r}: {path} has no row {self.label!r}; its rows are "
                             f"{sorted(rows)}")
        return document, rows[self.label]


def parse_source(text: str, root: Path) -> Source:
    """``NAME=DIR:LABEL`` (DIR relative to ``root`` unless absolute)."""
    name, sep, rest = text.partition("=")
    directory, colon, label = rest.rpartition(":")
    if not sep or not colon or not name or not directory or not label:
        raise ValueError(f"source {text!r} is not NAME=DIR:LABEL, e.g. "
                         "'RigL growth=permuted_mnist_10k_growth_rigl:nispa'")
    return Source(name, root / directory, label)


def _pm(mean: Optional[float], std: Optional[float], scale: float = 1.0, digits: int = 2) -> str:
    if mean is None:
        return "n/a"
    text = f"{mean * scale:,.{digits}f}"
    return text + (f" ± {std * scale:,.{digits}f}" if std is not None else "")


def _validation(document: dict[str, Any], row: dict[str, Any]) -> str:
    """The tuning run's validation accuracy of the configuration this row reports."""
    for choice in (document.get("tuning") or {}).get("choices", []):
        if choice["strategy"] == row["strategy"]:
            return f"{100 * choice['validation_accuracy']:.2f}"
    return "n/a"


def collect(sources: Sequence[Source], out_dir: Path, *, title: str, command: str) -> list[Path]:
    """Write ``collected.md`` and the per-experience plot; returns the files written."""
    if not sources:
        raise ValueError("give at least one source NAME=DIR:LABEL")
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must differ, got {names}")
    loaded = [(source, *source.load()) for source in sources]  # every error before writing
    lengths = {len(row["accuracy_matrix_mean"]) for _, _, row in loaded}
    if len(lengths) != 1:
        raise ValueError(f"the sources have streams of different lengths {sorted(lengths)}: "
                         "collect rows of one benchmark")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", "Collected (nothing trained) by", "", "```", command, "```", "",
             "| option | validation, tune seed (%) | seeds | test avg acc (%) | forgetting (pp) "
             "| active params | wall time (s) | source |",
             "|---|---:|---|---|---|---|---|---|"]
    for source, document, row in loaded:
        seeds = ",".join(str(s) for s in row["seeds"])
        lines.append(
            f"| {source.name} | {_validation(document, row)} | {seeds} "
            f"| {_pm(row['final_accuracy_mean'], row['final_accuracy_std'], 100)} "
            f"| {_pm(row['forgetting_mean'], row['forgetting_std'], 100)} "
            f"| {_pm(row['active_mean'], row['active_std'], digits=0)} "
            f"| {_pm(row['wall_time_s_mean'], row['wall_time_s_std'], digits=0)} "
            f"| `{source.directory.name}` ({row['label']}) |")
    lines += ["", "Validation: the tuning run of the reported configuration, on the tune seed's "
              "validation split. Wall times come from each directory's own runs, made in "
              "different sessions under different loads: compare them within a directory.",
              "", "Sources (the command of each results directory):", ""]
    lines += [f"- `{source.directory.name}`: `{document['command']}`"
              for source, document, _ in {id(d): (s, d, r) for s, d, r in loaded}.values()]
    table = out_dir / "collected.md"
    atomic_write_text(table, "\n".join(lines) + "\n")
    rows = [{**row, "label": source.name} for source, _, row in loaded]
    plot = plot_final_accuracy_per_experience(rows, out_dir / "final_accuracy_per_experience.png")
    return [table, plot]


def main(argv: Optional[Sequence[str]] = None, prog: str = "nispa-bench collect") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", metavar="NAME=DIR:LABEL",
                        help="a row LABEL of the results directory DIR (relative to --root)")
    parser.add_argument("--out", required=True, type=Path, help="directory for collected.md")
    parser.add_argument("--title", required=True)
    parser.add_argument("--root", type=Path, default=Path("benchmarks/results"),
                        help="where DIRs are (default: benchmarks/results)")
    args = parser.parse_args(argv)
    shown = ["python -m benchmarks.collect", *(shlex.quote(a) for a in (argv or sys.argv[1:]))]
    try:
        sources = [parse_source(text, args.root) for text in args.sources]
        written = collect(sources, args.out, title=args.title, command=" ".join(shown))
    except ValueError as error:
        parser.error(str(error))
    for path in written:
        print(path)
    return 0
