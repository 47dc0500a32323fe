"""NISPA in an ordinary Avalanche pipeline: Split MNIST, task-incremental.

This is the EWC pipeline every Avalanche user has; the only change is the strategy
line (and the sparse model it trains). Run from the repository root:

    .venv/bin/python examples/quickstart.py                 # the paper's settings
    .venv/bin/python examples/quickstart.py --max-phases 3  # a quick run

MNIST is found by ``avalanche_nispa.data.resolve_dataset_root`` (see the README):
set ``NISPA_DATA_DIR`` to a folder with ``mnist/`` IDX files, or pass ``--data-root``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, Optional, Sequence

import torch
from avalanche.benchmarks.classic import SplitMNIST
from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
from avalanche.logging import InteractiveLogger, TextLogger
from avalanche.training.plugins import EvaluationPlugin

from avalanche_nispa import NISPA, count_parameters
from avalanche_nispa.data import resolve_dataset_root
from avalanche_nispa.models import NISPAMLP


def run(
    *,
    data_root: Optional[str] = None,
    max_phases: Optional[int] = None,
    phase_epochs: int = 5,
    mode: str = "clean",
    seed: int = 0,
    verbose: bool = True,
) -> Dict[str, object]:
    """Train NISPA on Split MNIST and return the final metrics."""
    torch.manual_seed(seed)
    benchmark = SplitMNIST(
        n_experiences=5,
        return_task_id=True,  # task-incremental: the task label picks the head
        fixed_class_order=list(range(10)),
        train_transform=None,  # inputs in [0, 1], as in the paper's code
        eval_transform=None,
        dataset_root=resolve_dataset_root("mnist", data_root),
    )
    model = NISPAMLP(input_size=784, hidden_sizes=(400, 400, 400), density=0.2)
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        bwt_metrics(experience=True, stream=True),
        loggers=[InteractiveLogger()] if verbose else [TextLogger(open(os.devnull, "w"))],
    )
    # The one line that differs from an EWC pipeline:
    strategy = NISPA(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        train_mb_size=512,
        eval_mb_size=1024,
        evaluator=evaluator,
        max_phases=max_phases,
        phase_epochs=phase_epochs,
        mode=mode,
        cache_data=True,  # SplitMNIST has no random transforms: hold each task as tensors
    )
    start = time.perf_counter()
    results: Dict[str, float] = {}
    for experience in benchmark.train_stream:
        strategy.train(experience)
        results = strategy.eval(benchmark.test_stream[: experience.current_experience + 1])
    seconds = time.perf_counter() - start
    per_task = [results[f"Top1_Acc_Exp/eval_phase/test_stream/Task{t:03d}/Exp{t:03d}"] for t in range(5)]
    return {
        "per_task_accuracy": per_task,
        "average_accuracy": sum(per_task) / len(per_task),
        "forgetting": results["StreamForgetting/eval_phase/test_stream"],
        "bwt": results["StreamBWT/eval_phase/test_stream"],
        "phases": [h["phases"] for h in strategy.phase_history],
        "final_tau": [h["final_tau"] for h in strategy.phase_history],
        "parameters": count_parameters(model),
        "seconds": seconds,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="MNIST location (torchvision root or IDX files)")
    parser.add_argument("--max-phases", type=int, default=None, help="cap on phases per task (default: none)")
    parser.add_argument("--phase-epochs", type=int, default=5, help="epochs per phase, e (default: 5)")
    parser.add_argument("--mode", choices=("clean", "original"), default="clean")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = run(data_root=args.data_root, max_phases=args.max_phases,
                  phase_epochs=args.phase_epochs, mode=args.mode, seed=args.seed)
    print("per-task accuracy:", ", ".join(f"{100 * a:.2f}" for a in summary["per_task_accuracy"]))
    print(f"average accuracy: {100 * summary['average_accuracy']:.2f} %  "
          f"forgetting: {summary['forgetting']:.4f}  BWT: {summary['bwt']:.4f}")
    print("phases per task:", summary["phases"], " final tau:",
          [round(t, 4) for t in summary["final_tau"]])
    print("parameters:", summary["parameters"], f" wall time: {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
