"""Each experience's final accuracy and forgetting, from the accuracy matrix.

The main table averages over experiences; these say where the accuracy and the
forgetting are (NISPA's selective unfreezing trades forgetting of some old tasks
for capacity, so its forgetting is no longer exactly zero, and which tasks pay
matters). Forgetting of experience j is Avalanche's: the accuracy just after
training j minus the accuracy after the last experience; the last experience has
none. A Joint row (a single evaluation) has no forgetting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

__all__ = ["final_accuracies", "forgetting_per_experience", "per_experience_markdown"]


def final_accuracies(matrix: Sequence[Sequence[float]]) -> list[float]:
    """The last row of an accuracy matrix: every experience after the last one."""
    return [float(v) for v in matrix[-1]]


def forgetting_per_experience(matrix: Sequence[Sequence[float]]) -> list[Optional[float]]:
    """Per experience j: ``matrix[j][j] - matrix[-1][j]``; None for the last one and
    for a single-row (Joint) matrix."""
    n_rows, n_cols = len(matrix), len(matrix[0])
    if n_rows == 1:
        return [None] * n_cols
    return [float(matrix[j][j] - matrix[-1][j]) if j < n_rows - 1 else None
            for j in range(n_cols)]


def _cell(value: Optional[float], scale: float = 100.0) -> str:
    return "–" if value is None else f"{scale * value:.2f}"


def _table(rows: Sequence[dict[str, Any]], columns: list[list[Optional[float]]]) -> str:
    """One line per experience (so no line starts with a row's label, as the main
    table's do), one column per row."""
    header = "| Experience | " + " | ".join(row["label"] for row in rows) + " |\n"
    lines = [header, "|" + "---|" * (len(rows) + 1) + "\n"]
    for j in range(max(len(c) for c in columns)):
        cells = [_cell(c[j]) if j < len(c) else "–" for c in columns]
        lines.append(f"| E{j} | " + " | ".join(cells) + " |\n")
    return "".join(lines)


def per_experience_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Two Markdown tables over the rows of :func:`.report.aggregate`: the final
    accuracy (%) and the forgetting (pp) of every experience, from each row's mean
    accuracy matrix."""
    if not rows:
        return ""
    matrices = [row["accuracy_matrix_mean"] for row in rows]
    return ("## Per experience (mean over seeds)\n\n"
            "Final accuracy (%) of each experience after the last one:\n\n"
            + _table(rows, [final_accuracies(m) for m in matrices])
            + "\nForgetting (pp) of each experience: its accuracy just after training it "
              "minus its final accuracy:\n\n"
            + _table(rows, [forgetting_per_experience(m) for m in matrices]))
