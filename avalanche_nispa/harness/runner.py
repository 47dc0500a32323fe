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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from .configs import BenchmarkConfig
from .strategies import BuiltStrategy, build_strategy

__all__ = [
    "PROTOCOL",
    "PeakMemory",
    "RunPlan",
    "SweepOutcome",
    "accuracy_row",
    "file_stem",
    "load_benchmark",
    "read_record",
    "run_single",
    "run_sweep",
]

#: Version of the measurement protocol; stored runs of another version are redone.
PROTOCOL = 1

_ACCURACY_KEY = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream/Task\d+/Exp(\d+)$")
_FORGETTING_KEY = "StreamForgetting/eval_phase/test_stream"
_BWT_KEY = "StreamBWT/eval_phase/test_stream"

BenchmarkFactory = Callable[[int], Any]


def file_stem(label: str) -> str:
    """``label`` as a file name part, safe on every file system."""
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label).strip("_")


@dataclass
class RunPlan:
    """One run to do: a strategy (possibly a variant of it) and a seed.

    Attributes:
        label: the row it belongs to, e.g. ``"ewc"`` or ``"nispa(density=0.05)"``.
        strategy: the strategy's name (:data:`benchmarks.configs.STRATEGIES`).
        seed: the seed of the run (model init, data order, and the benchmark
            builder's own seed where it takes one).
        hparams: the strategy's full hyperparameters.
    """

    label: str
    strategy: str
    seed: int
    hparams: dict[str, Any]

    @property
    def stem(self) -> str:
        """File name stem of the run, safe on every file system."""
        return f"{file_stem(self.label)}__seed{self.seed}"

    def fingerprint(self, cfg: BenchmarkConfig) -> str:
        """A digest of everything that determines the run's result."""
        identity = {
            "protocol": PROTOCOL,
            "benchmark": cfg.name,
            "builder_kwargs": cfg.builder_kwargs,
            "backbone": asdict(cfg.backbone),
            "n_classes": cfg.n_classes,
            "strategy": self.strategy,
            "seed": self.seed,
            "hparams": self.hparams,
        }
        text = json.dumps(identity, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class SweepOutcome:
    """What a sweep did: the runs it executed, those it found done, and all results."""

    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


class PeakMemory:
    """Peak resident set size (RSS) of this process while a block runs.

    A background thread samples the RSS every ``interval`` seconds. ``peak_mb``
    is the highest sample; ``delta_mb`` is that minus the RSS when the block
    started, i.e. the memory the run added on top of what the process already
    held (Python, torch, Avalanche, the data set). Short spikes between two
    samples can be missed.
    """

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.baseline_mb = self.peak_mb = 0.0

    def _rss_mb(self) -> float:
        return self._process.memory_info().rss / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    def __enter__(self) -> "PeakMemory":
        self.baseline_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb())

    @property
    def delta_mb(self) -> float:
        return self.peak_mb - self.baseline_mb


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
    return builder(**kwargs)


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


def _nispa_epochs(built: BuiltStrategy) -> list[int]:
    history = getattr(built.strategy, "phase_history", None) or []
    return [int(entry["epochs"]) for entry in history]


def _unit_states(built: BuiltStrategy) -> Optional[list[dict[str, Any]]]:
    if built.kind != "nispa":
        return None
    from avalanche_nispa import unit_state_summary

    return _jsonable(list(unit_state_summary(built.model)))


def run_single(
    plan: RunPlan,
    cfg: BenchmarkConfig,
    benchmark: Any,
    *,
    device: str = "cpu",
    log_path: Optional[Path] = None,
    on_experience: Optional[Callable[[int], None]] = None,
) -> dict[str, Any]:
    """Train and evaluate one (strategy, seed) pair; return its result record.

    Args:
        plan: what to run.
        cfg: the benchmark's configuration.
        benchmark: the Avalanche benchmark (``train_stream`` / ``test_stream``).
        device: torch device.
        log_path: where Avalanche's ``TextLogger`` writes; ``os.devnull`` if None.
        on_experience: called with the number of experiences just finished.
    """
    from avalanche.training.determinism.rng_manager import RNGManager

    train_stream, test_stream = benchmark.train_stream, benchmark.test_stream
    n_experiences = len(train_stream)
    RNGManager.set_random_seeds(plan.seed)
    matrix: list[list[float]] = []
    unit_states: list[Any] = []
    train_time = 0.0
    log_target = str(log_path) if log_path is not None else os.devnull
    # Warnings are recorded, not printed: Avalanche's own deprecation notices
    # (Replay's storage policy, SI's numpy call) would repeat at every
    # experience, and its `deprecated` helper resets the warning filters.
    with open(log_target, "w") as log_file, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with PeakMemory() as memory:
            started = time.perf_counter()
            built = build_strategy(
                plan.strategy,
                cfg,
                plan.hparams,
                n_experiences=n_experiences,
                device=device,
                evaluator=_evaluator(log_file),
            )
            experiences = [train_stream] if built.joint else list(train_stream)
            for experience in experiences:
                tick = time.perf_counter()
                built.strategy.train(experience)
                train_time += time.perf_counter() - tick
                metrics = built.strategy.eval(test_stream)
                matrix.append(accuracy_row(metrics, n_experiences))
                if built.kind == "nispa":
                    unit_states.append(_unit_states(built))
                if on_experience is not None:
                    on_experience(n_experiences if built.joint else 1)
            wall_time = time.perf_counter() - started
    final = matrix[-1]
    forgetting = None if built.joint else metrics.get(_FORGETTING_KEY)
    bwt = None if built.joint else metrics.get(_BWT_KEY)
    if built.epochs is not None:
        epochs = [built.epochs] * len(experiences)
    else:
        epochs = _nispa_epochs(built)
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
        "bwt": None if bwt is None else float(bwt),
        "parameters": built.count_parameters(),
        "epochs_per_experience": epochs,
        "train_time_s": train_time,
        "wall_time_s": wall_time,
        "peak_rss_mb": memory.peak_mb,
        "peak_rss_delta_mb": memory.delta_mb,
        "notes": built.notes,
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        "nispa": None,
        "environment": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "avalanche": getattr(avalanche, "__version__", "unknown"),
            "threads": torch.get_num_threads(),
            "device": device,
        },
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if built.kind == "nispa":
        record["nispa"] = {
            "phase_history": getattr(built.strategy, "phase_history", None),
            "unit_states": unit_states,
        }
    return _jsonable(record)


def read_record(path: Path) -> Optional[dict[str, Any]]:
    """The JSON at ``path``, or None when it is missing or unreadable."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")
    os.replace(partial, path)


def run_sweep(
    cfg: BenchmarkConfig,
    plans: Sequence[RunPlan],
    *,
    results_dir: Path,
    benchmark_factory: BenchmarkFactory,
    device: str = "cpu",
    rerun: bool = False,
    progress: Optional[bool] = None,
) -> SweepOutcome:
    """Run every plan not already finished with the same settings.

    Args:
        cfg: the benchmark's configuration.
        plans: the runs wanted.
        results_dir: where ``runs/`` and ``logs/`` go.
        benchmark_factory: seed -> benchmark; called once per seed that has
            something left to run.
        device: torch device.
        rerun: run every plan again even if its result exists.
        progress: show a progress bar; None shows it only on a terminal.
    """
    from tqdm.auto import tqdm

    results_dir = Path(results_dir)
    runs_dir, logs_dir = results_dir / "runs", results_dir / "logs"
    outcome = SweepOutcome()
    pending: list[RunPlan] = []
    stored: dict[str, dict[str, Any]] = {}
    for plan in plans:
        record = None if rerun else read_record(runs_dir / f"{plan.stem}.json")
        if record is not None and record.get("fingerprint") == plan.fingerprint(cfg):
            stored[plan.stem] = record
        else:
            pending.append(plan)
    benchmarks: dict[int, Any] = {}
    total = len(pending) * cfg.n_experiences
    disable = None if progress is None else not progress
    with tqdm(total=total, unit="exp", disable=disable, file=sys.stderr) as bar:
        for plan in plans:
            if plan.stem in stored:
                outcome.skipped.append(plan.stem)
                outcome.results.append(stored[plan.stem])
                continue
            bar.set_description(f"{plan.label} seed {plan.seed}")
            if plan.seed not in benchmarks:
                benchmarks[plan.seed] = benchmark_factory(plan.seed)
            logs_dir.mkdir(parents=True, exist_ok=True)
            record = run_single(
                plan,
                cfg,
                benchmarks[plan.seed],
                device=device,
                log_path=logs_dir / f"{plan.stem}.log",
                on_experience=bar.update,
            )
            write_json(runs_dir / f"{plan.stem}.json", record)
            outcome.executed.append(plan.stem)
            outcome.results.append(record)
    return outcome
