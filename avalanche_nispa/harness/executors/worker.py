"""What one run does on a worker: build its own benchmark, train, send the record back.

A worker (a Ray worker process, on this machine or another node) gets a
:class:`WorkerTask`: the plan, the benchmark's configuration, the device, the
torch threads, the data root and the driver's ``NISPA_*`` environment
variables (the data module reads them). It loads the benchmark as the
sequential sweep does (:func:`~avalanche_nispa.harness.runner.load_benchmark`,
same seed, same root; a ``--tune`` run's validation split of it,
:mod:`~avalanche_nispa.harness.validation`), calls :func:`~avalanche_nispa.harness.runner.run_single`
with its log in a private temporary file, and returns a :class:`WorkerReply`:
the record and the log text. It writes nothing the driver reads: the driver
writes the results directory.

Data: the bundled ``split_digits`` needs none. Every other benchmark reads its
data set where the driver's ``--data-root`` / ``NISPA_*`` variables say, *on
the worker's node*: the same path must exist on every node (a shared file
system mounted at the same place, or a copy at the same path). A worker that
cannot find it raises :class:`DataUnavailable`, naming its host, the path and
the fix; the sweep stops on it instead of failing every run the same way.

This module imports neither Ray nor anything Ray needs, so it runs (and is
tested) in-process too.
"""

from __future__ import annotations

import inspect
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..configs import BenchmarkConfig
from ..planning import RunPlan

__all__ = ["DataUnavailable", "WorkerReply", "WorkerTask", "driver_environment", "run_task"]

#: Prefix of the environment variables the driver hands its workers.
ENV_PREFIX = "NISPA_"

_FIX = ("every node must see the data at the same path: mount the shared data "
        "directory at that path on every node, or pass --data-root with a path that "
        "exists on every node")


class DataUnavailable(FileNotFoundError):
    """A worker cannot find the benchmark's data; not retried (another try finds nothing)."""


@dataclass(frozen=True)
class WorkerTask:
    """Everything one run needs on a worker.

    Attributes:
        plan: the run.
        cfg: the benchmark's configuration.
        device: torch device (on a GPU node, Ray restricts it to the task's GPUs).
        threads: torch CPU threads (the task's CPUs).
        data_root: the driver's ``--data-root`` (None: the data module's search).
        environment: the driver's ``NISPA_*`` variables, set before loading.
        partial_dir: where the run is saved after every experience and resumed
            from (:mod:`~avalanche_nispa.harness.resume`), a path on the worker's
            node: a run resumes on a node that sees the same directory (this
            machine, or a shared file system); None: not saved.
    """

    plan: RunPlan
    cfg: BenchmarkConfig
    device: str = "cpu"
    threads: int = 1
    data_root: Optional[str] = None
    environment: dict[str, str] = field(default_factory=dict)
    partial_dir: Optional[str] = None


@dataclass(frozen=True)
class WorkerReply:
    """A finished run, sent back to the driver.

    Attributes:
        record: the run's result record.
        log_text: Avalanche's text log of the run.
        host: the worker's host name.
        pid: the worker's process id.
        seconds: the task's time on the worker, benchmark loading included.
    """

    record: dict[str, Any]
    log_text: str
    host: str
    pid: int
    seconds: float


def driver_environment() -> dict[str, str]:
    """This process's ``NISPA_*`` variables, for the workers."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def _needs_data(cfg: BenchmarkConfig) -> bool:
    """Whether ``cfg``'s builder reads a data set from disk (it takes a ``root``)."""
    from avalanche_nispa import benchmarks as builders

    builder = getattr(builders, cfg.builder_name)
    return "root" in inspect.signature(builder).parameters


def _load(task: WorkerTask, host: str) -> Any:
    """The run's benchmark, as the sequential sweep builds it: the benchmark of its
    seed, split for validation when the plan is a ``--tune`` run.

    Raises:
        DataUnavailable: naming this host, the path and the fix.
    """
    from avalanche_nispa.data import DatasetNotFoundError

    from ..runner import load_benchmark

    cfg, seed = task.cfg, task.plan.seed
    if _needs_data(cfg) and task.data_root is not None \
            and not Path(task.data_root).expanduser().exists():
        raise DataUnavailable(
            f"the data root {task.data_root} (--data-root) does not exist on the worker "
            f"host {host}; {_FIX}"
        )
    try:
        benchmark = load_benchmark(cfg, seed, root=task.data_root)
    except DatasetNotFoundError as err:
        raise DataUnavailable(
            f"the worker host {host} cannot find the data of {cfg.name}: {err}\n{_FIX}"
        ) from None
    if task.plan.evaluation == "validation":
        from ..validation import validation_benchmark

        benchmark = validation_benchmark(benchmark, cfg.validation_fraction, seed)
    return benchmark


def run_task(task: WorkerTask) -> WorkerReply:
    """Run ``task`` here and return its record and log (see the module docstring).

    Raises:
        DataUnavailable: the benchmark's data is not where the driver said.
    """
    import torch

    from ..runner import run_single

    started = time.perf_counter()
    host = socket.gethostname()
    os.environ.update(task.environment)
    torch.set_num_threads(task.threads)
    benchmark = _load(task, host)
    with tempfile.TemporaryDirectory(prefix="nispa-run-") as private:
        log_path = Path(private) / f"{task.plan.stem}.log"
        record = run_single(task.plan, task.cfg, benchmark, device=task.device,
                            log_path=log_path,
                            partial_dir=None if task.partial_dir is None else Path(task.partial_dir))
        log_text = log_path.read_text()
    return WorkerReply(record, log_text, host, os.getpid(), time.perf_counter() - started)
