"""Who runs a sweep's pending runs: in this process one after the other, or on Ray.

:func:`~avalanche_nispa.harness.runner.run_sweep` hands an :class:`Executor`
the runs a sweep still needs and receives a :class:`RunResult` as each one
finishes, in whatever order. The sweep (the *driver*) writes every
``runs/<stem>.json`` and ``logs/<stem>.log`` itself, as soon as the result
arrives, so a results directory has one writer whichever executor ran the runs.
An executor yields every run it was given exactly once: with a record, or as a
failure saying why (a failed run is never written as finished, so the next
sweep retries it).

* :class:`SequentialExecutor` (the default): the runs one after the other in
  this process, each on the benchmark the sweep's ``benchmark_factory`` makes
  (one per seed), with progress per epoch. A run that raises stops the sweep.
* :class:`~.ray_executor.RayExecutor` (``--executor ray``): one Ray task per
  run, on a local Ray instance or a cluster; see :mod:`.ray_executor`. Ray is
  an optional extra, imported only by that module, which only
  :func:`create_executor` imports.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, TextIO

from ..configs import BenchmarkConfig
from ..planning import RunPlan

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorError",
    "FailedRun",
    "RAY_INSTALL_HINT",
    "RayNotInstalled",
    "RunResult",
    "SequentialExecutor",
    "SweepContext",
    "create_executor",
]

#: The names ``--executor`` accepts.
EXECUTORS = ("sequential", "ray")

#: What to install for ``--executor ray``.
RAY_INSTALL_HINT = (
    "pip install avalanche-nispa[ray] (from a clone: pip install -c "
    "requirements/constraints.txt -e .[ray])"
)


class RayNotInstalled(ImportError):
    """``--executor ray`` without the ``ray`` extra."""


class ExecutorError(RuntimeError):
    """The executor cannot run the sweep as asked (no cluster there, too few resources)."""


@dataclass(frozen=True)
class SweepContext:
    """What every run of a sweep shares, handed to the executor by the sweep.

    Attributes:
        cfg: the benchmark's configuration.
        benchmark_factory: seed -> benchmark, in this process (the sequential
            executor's; a Ray worker builds its own, see :mod:`.ray_executor`).
        device: torch device.
        logs_dir: where the sequential executor's runs write their logs.
        progress_mode: ``"bar"``, ``"lines"``, ``"off"`` or None (see
            :class:`~avalanche_nispa.harness.progress.SweepProgress`).
        progress_stream: where progress goes (stderr when None).
        partial_dir: where unfinished runs are saved and resumed from
            (:mod:`~avalanche_nispa.harness.resume`); None: not saved.
    """

    cfg: BenchmarkConfig
    benchmark_factory: Callable[[int], Any]
    device: str
    logs_dir: Path
    progress_mode: Optional[str] = None
    progress_stream: Optional[TextIO] = None
    partial_dir: Optional[Path] = None


@dataclass
class RunResult:
    """One finished run: its record, or why there is none.

    Attributes:
        plan: the run.
        record: the result record (:func:`~avalanche_nispa.harness.runner.run_single`),
            None when the run failed.
        log_text: the run's log for the driver to write to ``logs/<stem>.log``
            (None: the executor already wrote it there, in the driver).
        error: one line saying why the run failed (None when it did not).
    """

    plan: RunPlan
    record: Optional[dict[str, Any]] = None
    log_text: Optional[str] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class FailedRun:
    """A run that has no result, reported in the tables instead of being left out."""

    label: str
    strategy: str
    seed: int
    hparams: dict[str, Any]
    error: str

    @classmethod
    def of(cls, plan: RunPlan, error: str) -> "FailedRun":
        return cls(plan.label, plan.strategy, plan.seed, plan.hparams, error)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Executor(abc.ABC):
    """Runs a sweep's pending runs and gives each result back as it finishes."""

    #: The executor's name on the command line (:data:`EXECUTORS`).
    name: ClassVar[str]

    @abc.abstractmethod
    def execute(self, plans: Sequence[RunPlan], context: SweepContext) -> Iterator[RunResult]:
        """Yield one :class:`RunResult` per plan, in the order they finish.

        Closing the iterator early (the driver was interrupted) stops the runs
        still going; nothing they did is kept.
        """


class SequentialExecutor(Executor):
    """The runs one after the other in this process, with per-epoch progress."""

    name = "sequential"

    def execute(self, plans: Sequence[RunPlan], context: SweepContext) -> Iterator[RunResult]:
        from ..progress import SweepProgress
        from ..runner import run_single

        tracker = SweepProgress(len(plans), context.cfg.n_experiences,
                                mode=context.progress_mode, stream=context.progress_stream)
        benchmarks: dict[int, Any] = {}
        try:
            for plan in plans:
                if plan.seed not in benchmarks:
                    benchmarks[plan.seed] = context.benchmark_factory(plan.seed)
                context.logs_dir.mkdir(parents=True, exist_ok=True)
                record = run_single(
                    plan, context.cfg, benchmarks[plan.seed], device=context.device,
                    log_path=context.logs_dir / f"{plan.stem}.log", progress=tracker,
                    partial_dir=context.partial_dir,
                )
                yield RunResult(plan, record)
        finally:
            tracker.close()


def create_executor(
    name: str = "sequential",
    *,
    device: str = "cpu",
    data_root: Optional[str] = None,
    ray_address: Optional[str] = None,
    cpus_per_run: Optional[int] = None,
    gpus_per_run: Optional[float] = None,
    max_retries: Optional[int] = None,
) -> Executor:
    """The executor named ``name``, its options checked before anything runs.

    The options after ``data_root`` are the Ray executor's (None: its default);
    giving one to the sequential executor is a ValueError, so that a
    forgotten ``--executor ray`` does not quietly run everything here.
    ``device`` is only checked against ``gpus_per_run``.

    Raises:
        ValueError: an unknown name, an option of another executor, a bad value.
        RayNotInstalled: ``name`` is ``"ray"`` and Ray cannot be imported.
    """
    ray_options = {"--ray-address": ray_address, "--cpus-per-run": cpus_per_run,
                   "--gpus-per-run": gpus_per_run, "--max-retries": max_retries}
    if name == "sequential":
        given = [flag for flag, value in ray_options.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: for --executor ray only; add "
                             "--executor ray, or leave them out to run here one run at a time")
        return SequentialExecutor()
    if name != "ray":
        raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    if gpus_per_run and device == "cpu":
        raise ValueError(f"--gpus-per-run {gpus_per_run:g} gives each run a GPU, which "
                         "--device cpu would not use: add --device cuda")
    try:
        from .ray_executor import RayExecutor
    except ImportError as err:
        if (err.name or "").split(".")[0] != "ray":
            raise
        raise RayNotInstalled(
            f"--executor ray needs Ray, which cannot be imported here ({err}); install "
            f"it with: {RAY_INSTALL_HINT}"
        ) from None
    return RayExecutor(
        address=ray_address, data_root=data_root,
        cpus_per_run=1 if cpus_per_run is None else cpus_per_run,
        gpus_per_run=0.0 if gpus_per_run is None else gpus_per_run,
        max_retries=2 if max_retries is None else max_retries,
    )
