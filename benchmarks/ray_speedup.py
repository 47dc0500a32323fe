"""``python -m benchmarks.ray_speedup``: one sweep run sequentially, then on Ray, timed.

For each sweep size (``--runs 8,32``: seeds 0..N-1), the same
``benchmarks.compare`` command runs twice, back to back, each in a fresh process
and a fresh results directory: first with the default sequential
executor, then with ``--executor ray`` (a local Ray instance on this machine's
cores, one CPU and one torch thread per run). Each wall time is that of the
whole process, Python start-up, Ray start-up and reports included. Written:

* **speedup** = sequential wall time / Ray wall time;
* **overhead per task** (Ray) = Ray wall time x CPUs / runs - mean run time
  of the Ray runs: the CPU time each run costs beyond its own training and
  evaluation (``wall_time_s`` of its record), i.e. Ray's start-up and
  scheduling, each worker's imports and benchmark loading, and the cores left
  idle while the last runs finish, spread over the runs;
* the same for the sequential run (with one CPU), for comparison;
* whether the two sweeps' records are the same apart from timings, memory and
  the host (they must be).

Results go to ``benchmarks/results/ray/`` as ``ray_speedup.md`` and
``ray_speedup.json``, with the command. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from avalanche_nispa.atomic import atomic_write_text

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 1.6

#: NISPA on the bundled digits with the paper's schedule (e = 5, k = 30): ~12-15 s a run here.
DEFAULT_SWEEP = ("--benchmark split_digits --strategies nispa --set nispa.phase_epochs=5 "
                 "--set nispa.tau_param=30 --threads 1 --no-plots")
_MEASURED = {"train_time_s", "wall_time_s", "peak_rss_mb", "peak_rss_delta_mb", "finished_at"}


def _timed(argv: list[str]) -> float:
    """Run ``argv`` from the repository; its wall time in seconds (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {shlex.join(argv)} failed:\n{done.stderr[-3000:]}")
    return seconds


def _records(results: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two records equal apart from timings, memory and the host."""
    def kept(record: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if k not in _MEASURED}
        out["environment"] = {k: v for k, v in record["environment"].items() if k != "host"}
        return out

    return kept(a) == kept(b)


def measure(sweep: Sequence[str], seeds: Sequence[int], workdir: Path) -> dict[str, Any]:
    """Time the sweep sequentially, then on Ray; the numbers of the module docstring."""
    compare = [sys.executable, "-m", "benchmarks.compare", *sweep,
               "--seeds", ",".join(map(str, seeds))]
    commands = {
        "sequential": [*compare, "--results-dir", str(workdir / "sequential")],
        "ray": [*compare, "--executor", "ray", "--cpus-per-run", "1",
                "--results-dir", str(workdir / "ray")],
    }
    load_before = os.getloadavg()
    wall = {name: _timed(argv) for name, argv in commands.items()}
    load_after = os.getloadavg()
    records = {name: _records(workdir / name) for name in commands}
    runs = len(seeds)
    if any(len(found) != runs for found in records.values()):
        raise SystemExit(f"error: expected {runs} runs in each sweep")
    mean_run = {name: statistics.fmean(r["wall_time_s"] for r in found.values())
                for name, found in records.items()}
    cpus = os.cpu_count() or 1  # the local Ray instance's CPUs: one run on each
    return {
        "commands": {name: shlex.join(["python", *argv[1:]]).replace(str(workdir), "<tmp>")
                     for name, argv in commands.items()},
        "runs": runs,
        "ray_workers": cpus,
        "wall_time_s": wall,
        "speedup": wall["sequential"] / wall["ray"],
        "target_speedup": TARGET_SPEEDUP,
        "mean_run_wall_time_s": mean_run,
        "overhead_per_task_s": {
            "ray": wall["ray"] * cpus / runs - mean_run["ray"],
            "sequential": wall["sequential"] / runs - mean_run["sequential"],
        },
        "records_identical": all(
            _same(records["sequential"][n], records["ray"][n]) for n in records["sequential"]),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "machine": {"cpus": cpus, "platform": platform.platform(),
                    "python": platform.python_version()},
    }


def render(results: Sequence[dict[str, Any]], command: str) -> str:
    """The Markdown report of :func:`measure`'s results, one row per sweep size."""
    first = results[0]
    lines = [
        "# Sweeps on Ray against sequential, on this machine",
        "", "```", command, "```", "",
        f"{first['ray_workers']} CPUs: the local Ray instance runs {first['ray_workers']} "
        "runs at once, one CPU and one torch thread each. Each size: the sequential "
        "sweep, then the Ray sweep, back to back, each a fresh process and results "
        "directory. Commands (for the largest size):", "",
        f"- sequential: `{results[-1]['commands']['sequential']}`",
        f"- ray: `{results[-1]['commands']['ray']}`", "",
        "| runs | sequential (s) | Ray (s) | speedup | mean run, seq / Ray (s) | "
        "overhead per task, Ray / seq (s) | records identical | load avg before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        wall, mean, over = r["wall_time_s"], r["mean_run_wall_time_s"], r["overhead_per_task_s"]
        load = r["load_average_1min"]
        lines.append(
            f"| {r['runs']} | {wall['sequential']:.1f} | {wall['ray']:.1f} | "
            f"**{r['speedup']:.2f}x** | {mean['sequential']:.2f} / {mean['ray']:.2f} | "
            f"{over['ray']:.2f} / {over['sequential']:.2f} | {r['records_identical']} | "
            f"{load['before']:.2f} → {load['after']:.2f} |")
    met = ", ".join(f"{r['runs']} runs: {'met' if r['speedup'] >= TARGET_SPEEDUP else 'NOT met'}"
                    for r in results)
    lines += [
        "", f"Target: speedup ≥ {TARGET_SPEEDUP}x ({met}).", "",
        "Wall time: the whole `benchmarks.compare` process (Python and Ray start-up, "
        "reports). Mean run: the records' `wall_time_s` (training and evaluation only). "
        "Overhead per task: Ray wall time × CPUs / runs − mean Ray run (sequential: wall "
        "time / runs − mean run), what each run costs beyond its own work: start-up, "
        "imports in each worker, benchmark loading, scheduling, cores idle while the last "
        "runs finish. Records identical: equal apart from timings, memory and host.", "",
    ]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_speedup",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="8,32",
                        help="sweep sizes, comma-separated: N runs are seeds 0..N-1 "
                        "(default: 8,32)")
    parser.add_argument("--sweep", default=DEFAULT_SWEEP,
                        help=f"the benchmarks.compare arguments (default: {DEFAULT_SWEEP})")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ray")
    args = parser.parse_args(None if argv is None else list(argv))
    command = shlex.join(["python", "-m", "benchmarks.ray_speedup",
                          *(sys.argv[1:] if argv is None else argv)])
    results = []
    for runs in (int(n) for n in args.runs.split(",") if n.strip()):
        with tempfile.TemporaryDirectory(prefix="ray-speedup-") as workdir:
            results.append(measure(shlex.split(args.sweep), range(runs), Path(workdir)))
        print(f"{runs} runs: speedup {results[-1]['speedup']:.2f}x", file=sys.stderr, flush=True)
    atomic_write_text(args.out / "ray_speedup.json",
                      json.dumps({"command": command, "results": results}, indent=2) + "\n")
    atomic_write_text(args.out / "ray_speedup.md", render(results, command))
    print(render(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
