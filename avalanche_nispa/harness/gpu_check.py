"""``scripts/gpu_check.sh``: is this library right and fast on this machine's GPU?

    bash scripts/gpu_check.sh                       # everything, on cuda
    python -m benchmarks.gpu_check --device cpu --benchmark split_digits --skip-speed

Three parts, each on ``--device`` (default ``cuda``), one after the other:

1. **tests**: the test suite's tests marked ``gpu`` (``pytest -m gpu``);
2. **zero forgetting**: NISPA with the benchmark's configuration (default
   ``split_mnist``) trained experience by experience; after each one, every weight and
   bias frozen by an earlier experience must be bit-identical
   (:mod:`avalanche_nispa.invariants`) and every earlier experience's test accuracy
   must equal, exactly, the one measured right after it was trained;
3. **speed**: the per-epoch part of ``benchmarks.speed`` on the device (NISPA's epoch
   against Naive's on the same backbone), written to ``benchmarks/results/speed_<device>/``
   under the working directory (the script runs it from the checkout).

With ``--device cuda`` on a machine without CUDA, every part is skipped and the
output says so (exit status 0). The last line is the one-line summary
``gpu_check: ...``; the exit status is 1 when a part that ran failed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

__all__ = ["cuda_available", "main", "zero_forgetting_run"]

def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def zero_forgetting_run(benchmark: str = "split_mnist", *, device: str = "cuda", seed: int = 0,
                        max_phases: Optional[int] = None, data_root: Optional[str] = None,
                        log: Callable[[str], Any] = print) -> Dict[str, Any]:
    """Train NISPA on ``benchmark`` and check zero forgetting after every experience.

    Returns the final accuracy per experience, the frozen entries checked and every
    violation found (empty when NISPA forgot nothing).
    """
    import torch
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin

    from ..invariants import frozen_changes, frozen_count, frozen_snapshot
    from .configs import get_config
    from .runner import accuracy_row, load_benchmark
    from .strategies import build_strategy

    cfg = get_config(benchmark)
    if cfg.class_incremental:
        raise ValueError(f"{benchmark} is class-incremental; zero forgetting is checked on a "
                         "task-incremental benchmark (e.g. split_mnist)")
    torch.manual_seed(seed)
    stream = load_benchmark(cfg, seed, data_root)
    hp = cfg.hparams("nispa", {"max_phases": max_phases} if max_phases else None)
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    strategy = build_strategy("nispa", cfg.backbone, cfg.n_classes, hp,
                              n_experiences=cfg.n_experiences, device=device,
                              evaluator=evaluator, scenario=cfg.scenario).strategy
    snapshots, learned, violations = [], [], []
    start = time.perf_counter()
    for index, experience in enumerate(stream.train_stream):
        strategy.train(experience)
        row = accuracy_row(strategy.eval(stream.test_stream[: index + 1]), index + 1)
        for earlier, snapshot in enumerate(snapshots):
            violations += [f"after experience {index}, frozen by {earlier}: {problem}"
                           for problem in frozen_changes(strategy.model, snapshot)]
        for earlier, accuracy in enumerate(learned):
            if row[earlier] != accuracy:
                violations.append(f"experience {earlier}'s accuracy went from {accuracy!r} to "
                                  f"{row[earlier]!r} after experience {index}")
        learned.append(row[index])
        snapshots.append(frozen_snapshot(strategy.model))
        log(f"  experience {index}: accuracy {100 * row[index]:.2f} %, "
            f"{frozen_count(snapshots[-1])} frozen entries")
    return {
        "benchmark": benchmark, "device": device, "seed": seed,
        "accuracy": [100 * a for a in row],
        "mean_accuracy": 100 * sum(row) / len(row),
        "frozen_entries": frozen_count(snapshots[-1]) if snapshots else 0,
        "seconds": time.perf_counter() - start,
        "violations": violations,
    }


def _run_gpu_tests(python: str) -> tuple[bool, str]:
    """``pytest -m gpu``; (passed, its summary line)."""
    done = subprocess.run([python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = re.sub(r"=+", "", lines[-1]).strip() if lines else "no output"
    print(done.stdout[-4000:], end="")
    # 0: all passed; 5: none collected (not a failure of the code, but said)
    return done.returncode in (0, 5), summary


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m benchmarks.gpu_check") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--benchmark", default="split_mnist",
                        help="task-incremental benchmark of the zero-forgetting run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-phases", type=int, default=None,
                        help="cap NISPA's phases per experience (a quicker run)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)

    import torch

    parts: List[str] = []  # the summary line's parts
    failed = False
    if args.device.startswith("cuda") and not cuda_available():
        print(f"CUDA is not available here (torch {torch.__version__}, "
              f"built for CUDA {torch.version.cuda or 'none'}): skipping the gpu tests, the "
              f"{args.benchmark} run on {args.device} and the speed benchmark on {args.device}.")
        print(f"gpu_check: SKIPPED (no CUDA device; torch {torch.__version__})")
        return 0
    where = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") \
        else args.device
    print(f"gpu_check on {args.device} ({where}), torch {torch.__version__}")

    if args.skip_tests:
        parts.append("tests skipped")
    else:
        print("== tests marked gpu")
        ok, summary = _run_gpu_tests(sys.executable)
        failed |= not ok
        parts.append(f"tests {'ok' if ok else 'FAILED'} ({summary})")

    print(f"== NISPA on {args.benchmark}, zero forgetting checked after every experience")
    run = zero_forgetting_run(args.benchmark, device=args.device, seed=args.seed,
                              max_phases=args.max_phases, data_root=args.data_root)
    for violation in run["violations"]:
        print(f"  VIOLATION {violation}")
    failed |= bool(run["violations"])
    parts.append(f"{args.benchmark} {run['mean_accuracy']:.2f} % in {run['seconds']:.0f} s, zero "
                 f"forgetting {'ok' if not run['violations'] else 'VIOLATED'} "
                 f"({run['frozen_entries']} frozen entries)")

    if args.skip_speed:
        parts.append("speed skipped")
    else:
        from . import speed

        print("== speed (per-epoch part)")
        output = Path("benchmarks") / "results" / f"speed_{args.device.replace(':', '')}"
        failed |= speed.main(["--device", args.device, "--skip-full-run", "--repeats", "1",
                              "--output", str(output)], prog=f"{prog} (speed part)") != 0
        summary = json.loads((output / "speed.json").read_text())["summary"]
        parts.append(f"NISPA/Naive epoch {summary['mlp_epoch_ratio']:.2f}x (MLP), "
                     f"{summary['cnn_epoch_ratio']:.2f}x (CNN)")
    print(f"gpu_check: {'FAILED' if failed else 'OK'} on {args.device}: " + "; ".join(parts))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
