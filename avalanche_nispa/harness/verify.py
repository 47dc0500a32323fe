"""Check that a results directory is what its own command would produce, without training.

Each committed ``results.md`` quotes the command that made it. Re-planning that
command must give exactly the stored runs (same labels, file stems and
fingerprints), so that running it again would run nothing, and the conflict
check must find nothing. This guards the typed settings: a default changed, a
type converted or a key renamed would change a fingerprint and show here.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cli import plan_command
from .planning import RunPlan, results_dir_conflicts

__all__ = ["check_results_dir", "stored_command"]


def stored_command(results_dir: Path) -> list[str]:
    """The arguments of the command quoted at the top of ``results_dir/results.md``."""
    text = (Path(results_dir) / "results.md").read_text()
    line = text.split("```\n", 2)[1].splitlines()[0]
    words = shlex.split(line)
    for prefix in (["python", "-m", "benchmarks.compare"], ["nispa-bench", "compare"]):
        if words[: len(prefix)] == prefix:
            return words[len(prefix):]
    raise ValueError(f"{results_dir}/results.md does not start with a compare command: {line}")


def check_results_dir(results_dir: Path, root: Path) -> list[str]:
    """What differs between ``results_dir``'s stored runs and its command's plans.

    Args:
        results_dir: a directory written by the harness.
        root: the directory the command ran from (its ``--results-dir`` is relative).

    Returns:
        One line per problem; empty when a re-run would run and change nothing.
    """
    results_dir = Path(results_dir)
    argv = stored_command(results_dir)
    previous = os.getcwd()
    os.chdir(root)
    try:
        planned = plan_command(argv)
    finally:
        os.chdir(previous)
    problems = []
    if (Path(root) / planned.results_dir).resolve() != results_dir.resolve():
        problems.append(f"the command writes to {planned.results_dir}, not {results_dir}")
    if planned.tuning is not None:
        # the tuning runs first: they decide which runs the table is made of
        tuning_dir = results_dir / planned.tuning.directory.name
        problems += [f"{planned.tuning.directory.name}/{problem}"
                     for problem in _compare(planned.cfg, planned.tuning.plans, tuning_dir)]
        if planned.tuning.choices is None:
            problems.append("the tuning runs are not all stored: the chosen configurations "
                            "are not known")
    return problems + _compare(planned.cfg, planned.plans, results_dir)


def _compare(cfg: Any, plans: Sequence[RunPlan], results_dir: Path) -> list[str]:
    """What differs between the runs stored in ``results_dir`` and ``plans``."""
    problems = []
    stored = {p.stem: json.loads(p.read_text()) for p in (results_dir / "runs").glob("*.json")}
    planned_stems = {plan.stem for plan in plans}
    for stem in sorted(set(stored) - planned_stems):
        problems.append(f"runs/{stem}.json is not planned by the command")
    for plan in plans:
        record = stored.get(plan.stem)
        if record is None:
            problems.append(f"{plan.stem} is planned but not stored: a re-run would train it")
        elif (record["label"], record["fingerprint"]) != (plan.label, plan.fingerprint(cfg)):
            problems.append(f"{plan.stem}: stored label/fingerprint differ from the plan's")
    problems += results_dir_conflicts(cfg, plans, results_dir)
    return problems
