"""``nispa-bench collect``: rows of finished results directories in one table and plot;
bad sources are refused, naming the problem, before anything is written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from avalanche_nispa.harness.bench import bench


def _results_dir(root: Path, name: str, label: str, accuracy: float, *, n_exp: int = 3,
                 seeds=(1, 2), validation: float = 0.9) -> Path:
    directory = root / name
    directory.mkdir()
    row = {"label": label, "strategy": "nispa", "seeds": list(seeds),
           "final_accuracy_mean": accuracy, "final_accuracy_std": 0.01,
           "forgetting_mean": 0.004, "forgetting_std": 0.001,
           "active_mean": 130846.0, "active_std": 280.0,
           "wall_time_s_mean": 541.4, "wall_time_s_std": 14.2,
           "accuracy_matrix_mean": [[accuracy] * n_exp for _ in range(n_exp)]}
    document = {"command": f"python -m benchmarks.compare --results-dir {name}",
                "tuning": {"choices": [{"strategy": "nispa", "validation_accuracy": validation}]},
                "rows": [row]}
    (directory / "results.json").write_text(json.dumps(document))
    return directory


def test_collect_writes_one_row_per_source_with_its_validation_and_plot(tmp_path):
    _results_dir(tmp_path, "paper", "nispa", 0.9207, validation=0.9216)
    _results_dir(tmp_path, "rigl", "nispa", 0.9083, seeds=(1,), validation=0.9045)
    out = tmp_path / "out"
    assert bench(["collect", "--root", str(tmp_path), "--out", str(out), "--title", "T",
                  "paper=paper:nispa", "RigL growth=rigl:nispa"]) == 0
    table = (out / "collected.md").read_text()
    assert "| paper | 92.16 | 1,2 | 92.07 ± 1.00 | 0.40 ± 0.10 | 130,846 ± 280 | 541 ± 14 |" in table
    assert "| RigL growth | 90.45 | 1 | 90.83 ± 1.00 |" in table
    assert "`python -m benchmarks.compare --results-dir rigl`" in table
    assert (out / "final_accuracy_per_experience.png").stat().st_size > 0
    assert not (out / "results.md").exists()  # a collection is not a results directory


@pytest.mark.parametrize("source, message", [
    ("nowhere=missing:nispa", "does not exist"),
    ("other=paper:packnet", "has no row 'packnet'; its rows are \\['nispa'\\]"),
    ("no-label=paper", "is not NAME=DIR:LABEL"),
    ("short=short:nispa", "streams of different lengths"),
])
def test_bad_sources_are_refused_before_anything_is_written(tmp_path, capsys, source, message):
    _results_dir(tmp_path, "paper", "nispa", 0.92)
    _results_dir(tmp_path, "short", "nispa", 0.92, n_exp=2)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        bench(["collect", "--root", str(tmp_path), "--out", str(out), "--title", "T",
               "paper=paper:nispa", source])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()


REPO = Path(__file__).resolve().parent.parent
COLLECTED = sorted((REPO / "benchmarks" / "results" / "collected").glob("*/collected.md"))


@pytest.mark.parametrize("table", COLLECTED, ids=lambda p: p.parent.name)
def test_committed_collections_match_their_sources(tmp_path, table):
    """Re-collecting a committed table from the committed results gives the same table."""
    import shlex

    command = table.read_text().split("```\n")[1].splitlines()[0]
    argv = shlex.split(command)[3:]  # after "python -m benchmarks.collect"
    out = argv.index("--out")
    argv[out + 1] = str(tmp_path / "again")
    assert bench(["collect", "--root", str(REPO / "benchmarks" / "results"), *argv]) == 0
    fresh = (tmp_path / "again" / "collected.md").read_text().splitlines()
    committed = table.read_text().splitlines()
    assert [l for l in fresh if l.startswith("|")] == [l for l in committed if l.startswith("|")]
