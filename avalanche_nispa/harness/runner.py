"""One (strategy, seed) run, and a sweep of runs that resumes where it stopped.

Protocol of a run: seed every generator (Avalanche's ``RNGManager``), build the
strategy, then for each experience train on it and evaluate the *whole* test
stream, which gives one row of the accuracy matrix ``R[i][j]`` (accuracy on
test experience ``j`` after training experience ``i``). Joint training trains
once on the union and gives a single row. Forgetting and BWT are Avalanche's
``StreamForgetting`` / ``StreamBWT`` after the last evaluation: the mean over
the experiences before the last of ``R[j][j] - R[T-1][j]`` (BWT is its
negative). Every run is written to ``runs/<label>__seed<k>.json`` as soon as
it finishes; a sweep skips the runs whose file exists with the same settings.
Who runs the others (here one by one, or on Ray) is the sweep's executor
(:mod:`.executors`).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from avalanche_nispa.atomic import atomic_write_text

from . import strategies as registry
from .configs import BenchmarkConfig
from .executors import Executor, FailedRun, SequentialExecutor, SweepContext
from .per_experience import forgetting_per_experience
from .memory import PeakMemory
from .planning import PROTOCOL, RunPlan, read_record
from .progress import SweepProgress
from .resume import PARTIAL_DIR, PartialRun, Progress, resumable

#: Record fields that describe one execution of a plan, not its result: two
#: executions of the same plan (another host, executor, or a resumed run, whose
#: ``segments`` says how many processes it took) differ only in these and in
#: ``environment.host``.
EXECUTION_FIELDS = frozenset({
    "train_time_s", "wall_time_s", "peak_rss_mb", "peak_rss_delta_mb", "finished_at", "segments",
})

__all__ = [
    "PeakMemory",
    "SweepOutcome",
    "accuracy_row",
    "load_benchmark",
    "run_single",
    "run_sweep",
    "write_json",
]

_ACCURACY_KEY = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream/Task\d+/Exp(\d+)$")
_FORGETTING_KEY = "StreamForgetting/eval_phase/test_stream"
_BWT_KEY = "StreamBWT/eval_phase/test_stream"

BenchmarkFactory = Callable[[int], Any]


@dataclass
class SweepOutcome:
    """What a sweep did: the runs it executed, those it found done, all results
    (in the plans' order), and the runs that failed (no result; see :mod:`.executors`)."""

    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[FailedRun] = field(default_factory=list)


def load_benchmark(cfg: BenchmarkConfig, seed: int, root: Optional[str] = None) -> Any:
    """Build ``cfg``'s benchmark with :mod:`avalanche_nispa.benchmarks`.

    ``seed`` and ``root`` are passed only to builders that take them.
    """
    import inspect

    try:
        from avalanche_nispa import benchmarks as builders
    except ImportError as err:
        raise RuntimeError(
            f"the benchmark builders (avalanche_nispa.benchmarks) cannot be imported: {err}"
        ) from err
    builder = getattr(builders, cfg.builder_name)
    accepted = inspect.signature(builder).parameters
    kwargs = dict(cfg.builder_kwargs)
    if "seed" in accepted:
        kwargs["seed"] = seed
    if root is not None and "root" in accepted:
        kwargs["root"] = root
    benchmark = builder(**kwargs)
    built = len(benchmark.train_stream)
    if built != cfg.n_experiences:
        raise ValueError(
            f"benchmark {cfg.name!r} is configured for {cfg.n_experiences} experiences but its "
            f"builder {cfg.builder_name}({kwargs}) made {built}: pass n_experiences in the "
            "configuration's builder_kwargs")
    return benchmark


def accuracy_row(metrics: dict[str, Any], n_experiences: int) -> list[float]:
    """Accuracy on each test experience, from the metrics of one evaluation."""
    row = [math.nan] * n_experiences
    for name, value in metrics.items():
        match = _ACCURACY_KEY.match(name)
        if match and int(match.group(1)) < n_experiences:
            row[int(match.group(1))] = float(value)
    if any(math.isnan(v) for v in row):
        raise RuntimeError(f"the evaluation did not report every experience: {row}")
    return row


def _jsonable(value: Any) -> Any:
    """``value`` with tensors, numpy scalars and tuples turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _evaluator(log_file: Any) -> Any:
    from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
    from avalanche.logging import TextLogger
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        forgetting_metrics(experience=True, stream=True),
        bwt_metrics(experience=True, stream=True),
        loggers=[TextLogger(log_file)],
    )


def run_single(
    plan: RunPlan,
    cfg: BenchmarkConfig,
    benchmark: Any,
    *,
    device: str = "cpu",
    log_path: Optional[Path] = None,
    progress: Optional[SweepProgress] = None,
    partial_dir: Optional[Path] = None,
) -> dict[str, Any]:
    """Train and evaluate one (strategy, seed) pair; return its result record.

    Args:
        plan: what to run.
        cfg: the benchmark's configuration.
        benchmark: the Avalanche benchmark (``train_stream`` / ``test_stream``).
        device: torch device.
        log_path: where Avalanche's ``TextLogger`` writes; ``os.devnull`` if None.
        progress: told about every epoch and experience, through a plugin.
        partial_dir: where a checkpointable run is saved after every experience
            and resumed from (:mod:`.resume`); None: the run is not saved.
    """
    from avalanche.training.determinism.rng_manager import RNGManager

    train_stream, test_stream = benchmark.train_stream, benchmark.test_stream
    n_experiences = len(train_stream)
    RNGManager.set_random_seeds(plan.seed)
    partial = None if partial_dir is None else PartialRun(partial_dir, plan.stem,
                                                          plan.fingerprint(cfg))
    saved = None if partial is None else partial.read()
    before = saved[0] if saved is not None else Progress()
    matrix, details = list(before.matrix), list(before.details)
    train_time = before.train_time_s
    log_target = str(log_path) if log_path is not None else os.devnull
    # Warnings are recorded, not printed: Avalanche's own deprecation notices
    # (Replay's storage policy, SI's numpy call) would repeat at every
    # experience, and its `deprecated` helper resets the warning filters.
    with open(log_target, "w") as log_file, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_file.write(before.log_text)
        with PeakMemory() as memory:
            started = time.perf_counter()
            built = registry.build_strategy(
                plan.strategy,
                cfg.backbone,
                cfg.n_classes,
                plan.hparams,
                n_experiences=n_experiences,
                device=device,
                evaluator=_evaluator(log_file),
                plugins=[progress.plugin()] if progress is not None else [],
                scenario=cfg.scenario,
            )
            if partial is not None and not resumable(built.strategy):
                if saved is not None:
                    raise RuntimeError(f"{partial.state_path} is not a run of {plan.strategy}, "
                                       "which cannot be resumed: delete it")
                partial = None
            if partial is not None and saved is not None:
                partial.restore(built.strategy, *saved)
            experiences = [train_stream] if built.joint else list(train_stream)
            if progress is not None:
                progress.start_run(plan.label, plan.seed, calls=len(experiences),
                                   epochs=built.epochs, done=len(matrix))

            def segment() -> Progress:
                log_file.flush()
                return Progress(
                    len(matrix), matrix, details, train_time,
                    before.wall_time_s + time.perf_counter() - started,
                    max(before.peak_rss_mb, memory.peak_mb),
                    max(before.peak_rss_delta_mb, memory.delta_mb),
                    sorted(set(before.warnings) | _messages(caught)),
                    Path(log_target).read_text() if log_path is not None else "",
                    before.segments + 1)

            for experience in experiences[len(matrix):]:
                tick = time.perf_counter()
                built.strategy.train(experience)
                train_time += time.perf_counter() - tick
                metrics = built.strategy.eval(test_stream)
                matrix.append(accuracy_row(metrics, n_experiences))
                detail = built.entry.experience_details(built)
                if detail is not None:
                    details.append(_jsonable(detail))
                if partial is not None and len(matrix) < len(experiences):
                    partial.save(built.strategy, segment())
        after = segment()
    final = matrix[-1]
    forgetting = None if built.joint else metrics.get(_FORGETTING_KEY)
    bwt = None if built.joint else metrics.get(_BWT_KEY)
    import avalanche

    record: dict[str, Any] = {
        "protocol": PROTOCOL,
        "fingerprint": plan.fingerprint(cfg),
        "benchmark": cfg.name,
        "label": plan.label,
        "strategy": plan.strategy,
        "seed": plan.seed,
        "hparams": plan.hparams,
        "n_experiences": n_experiences,
        "joint": built.joint,
        "accuracy_matrix": matrix,
        "final_accuracy": sum(final) / len(final),
        "final_accuracy_per_experience": final,
        "forgetting": None if forgetting is None else float(forgetting),
        "forgetting_per_experience": None if built.joint else forgetting_per_experience(matrix),
        "bwt": None if bwt is None else float(bwt),
        "parameters": built.count_parameters(),
        "epochs_per_experience": built.entry.epochs_trained(built, len(experiences)),
        "train_time_s": after.train_time_s,
        "wall_time_s": after.wall_time_s,
        "peak_rss_mb": after.peak_rss_mb,
        "peak_rss_delta_mb": after.peak_rss_delta_mb,
        "notes": built.notes,
        "warnings": after.warnings,
        # the strategy's own details (NISPA's phases and unit states), else None
        "nispa": built.entry.run_details(built, details),
        "environment": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "avalanche": getattr(avalanche, "__version__", "unknown"),
            "threads": torch.get_num_threads(),
            "device": device,
            "host": socket.gethostname(),
        },
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if plan.evaluation != "test":
        # a --tune run: its accuracies are on the held-out part of the training data
        record["evaluation"] = plan.evaluation
    if after.segments > 1:
        record["segments"] = after.segments  # resumed: times summed over the processes
    if partial is not None:
        partial.discard()
    return _jsonable(record)


def _messages(caught: Sequence[warnings.WarningMessage]) -> set[str]:
    return {f"{w.category.__name__}: {w.message}" for w in caught}


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a reader never sees a half-written file."""
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def run_sweep(
    cfg: BenchmarkConfig,
    plans: Sequence[RunPlan],
    *,
    results_dir: Path,
    benchmark_factory: BenchmarkFactory,
    device: str = "cpu",
    rerun: bool = False,
    progress: Optional[bool] = None,
    progress_stream: Optional[Any] = None,
    executor: Optional[Executor] = None,
) -> SweepOutcome:
    """Run every plan not already finished with the same settings.

    The pending plans go to ``executor`` (:mod:`.executors`; default: one after
    the other in this process); this function alone writes each result, as it
    arrives. A run the executor reports failed is not written, so that the next
    sweep runs it again, and is listed in ``SweepOutcome.failed``.

    Args:
        cfg: the benchmark's configuration.
        plans: the runs wanted.
        results_dir: where ``runs/`` and ``logs/`` go.
        benchmark_factory: seed -> benchmark; called once per seed that has
            something left to run.
        device: torch device.
        rerun: run every plan again even if its result exists (and from its
            first experience, not from an unfinished earlier try: :mod:`.resume`).
        progress: True: a bar; False: nothing; None: a bar on a terminal, one
            line per epoch with an ETA otherwise (:mod:`.progress`).
        progress_stream: where progress goes (stderr by default).
        executor: who runs the pending plans (:mod:`.executors`).
    """
    results_dir = Path(results_dir)
    runs_dir, logs_dir = results_dir / "runs", results_dir / "logs"
    partial_dir = results_dir / PARTIAL_DIR
    outcome = SweepOutcome()
    pending: list[RunPlan] = []
    stored: dict[str, dict[str, Any]] = {}
    for plan in plans:
        record = None if rerun else read_record(runs_dir / f"{plan.stem}.json")
        if record is not None and record.get("fingerprint") == plan.fingerprint(cfg):
            stored[plan.stem] = record
        else:
            pending.append(plan)
            if rerun:  # from the start, not from an unfinished earlier try
                PartialRun(partial_dir, plan.stem, plan.fingerprint(cfg)).discard()
    mode = {True: "bar", False: "off", None: None}[progress]
    context = SweepContext(cfg, benchmark_factory, device, logs_dir, mode, progress_stream,
                           partial_dir)
    finished: dict[str, dict[str, Any]] = {}
    failed: dict[str, FailedRun] = {}
    for result in (executor or SequentialExecutor()).execute(pending, context):
        stem = result.plan.stem
        if stem in finished or stem in failed:
            raise RuntimeError(f"the executor returned the run {stem} twice")
        if result.log_text is not None:
            atomic_write_text(logs_dir / f"{stem}.log", result.log_text)
        if result.record is None:
            failed[stem] = FailedRun.of(result.plan, result.error or "no result")
            continue
        write_json(runs_dir / f"{stem}.json", result.record)
        finished[stem] = result.record
        outcome.executed.append(stem)
    missing = [plan.stem for plan in pending if plan.stem not in finished and plan.stem not in failed]
    if missing:
        raise RuntimeError(f"the executor returned no result for {', '.join(missing)}")
    for plan in plans:
        if plan.stem in stored:
            outcome.skipped.append(plan.stem)
            outcome.results.append(stored[plan.stem])
        elif plan.stem in finished:
            outcome.results.append(finished[plan.stem])
        else:
            outcome.failed.append(failed[plan.stem])
    return outcome
