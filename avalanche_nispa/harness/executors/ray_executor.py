"""Sweeps on Ray: one Ray task per run; the driver collects the records as they finish.

Each pending run becomes one task of ``cpus_per_run`` CPUs (and torch threads)
and ``gpus_per_run`` GPUs, running :func:`~.worker.run_task` on a worker:
the worker builds its own benchmark (same seed and data root as the sequential
sweep, so the record is the same apart from timings, memory and the host) and
returns the record and its log. Ray starts as many runs at once as the
resources allow; :func:`ray.wait` hands each result to the driver as soon as it
is there, and the driver writes it at once (see :mod:`.`).

Where Ray runs: ``address`` (``--ray-address``), else ``$RAY_ADDRESS`` (set by
``ray job submit``), else a new local instance on this machine's cores, shut
down at the end. ``auto`` joins the cluster this node belongs to; ``host:port``
or ``ray://host:10001`` another one. When Ray is already initialised in this
process (a notebook, a test), that connection is used and left open.

Faults:

* a worker that dies (killed, out of memory, its node lost) is retried by Ray
  up to ``max_retries`` times; then the run is a failure ("its worker died"),
  reported in the tables and not written, so the next sweep runs it again;
* an exception raised by the run itself (a bug, a bad setting) is not retried:
  the run is a failure with the exception's line, its traceback in the log;
* :class:`~.worker.DataUnavailable` (a worker cannot find the data) stops the
  sweep with its message: every other run would fail the same way;
* the driver killed or interrupted: its runs in flight are lost (a local
  instance dies with the driver; on a cluster the driver cancels them when it
  can); the records already written stay, so the same command resumes.

Progress: one line per finished run, with the time left estimated from the
runs finished so far; epochs are not reported (they happen on the workers).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional

import ray

from ..planning import RunPlan
from ..progress import format_duration
from . import Executor, ExecutorError, RunResult, SweepContext
from .worker import DataUnavailable, WorkerReply, WorkerTask, driver_environment, run_task

__all__ = ["RayExecutor"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the task's name in its error text


class RayExecutor(Executor):
    """One Ray task per run (see the module docstring).

    Args:
        address: the Ray cluster to join; None: ``$RAY_ADDRESS``, else a new
            local instance.
        data_root: the driver's ``--data-root``, passed to every worker.
        cpus_per_run: CPUs reserved for each run, also its torch threads.
        gpus_per_run: GPUs reserved for each run (fractions share a GPU).
        max_retries: how many times a run whose worker died is started again.
        task: what each Ray task runs (a :func:`~.worker.run_task` stand-in,
            e.g. one that injects faults in a test).
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: Optional[str] = None,
        data_root: Optional[str] = None,
        cpus_per_run: int = 1,
        gpus_per_run: float = 0.0,
        max_retries: int = 2,
        task: Callable[[WorkerTask], WorkerReply] = run_task,
    ) -> None:
        if not isinstance(cpus_per_run, int) or cpus_per_run < 1:
            raise ValueError(f"--cpus-per-run must be a whole number >= 1, got {cpus_per_run}")
        if gpus_per_run < 0:
            raise ValueError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
        if max_retries < 0:
            raise ValueError(f"--max-retries must be >= 0, got {max_retries}")
        self.address, self.data_root = address, data_root
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.max_retries, self.task = max_retries, task

    def execute(self, plans: Sequence[RunPlan], context: SweepContext) -> Iterator[RunResult]:
        if not plans:
            return
        started_here = self._connect()
        in_flight: dict[Any, RunPlan] = {}
        try:
            self._check_resources(started_here)
            lines = _RunLines(len(plans), context)
            lines.start(self.cpus_per_run, self.gpus_per_run)
            remote = ray.remote(self.task)
            environment = driver_environment()
            for plan in plans:
                task = WorkerTask(plan, context.cfg, context.device, self.cpus_per_run,
                                  self.data_root, environment,
                                  None if context.partial_dir is None else str(context.partial_dir))
                ref = remote.options(
                    num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                    max_retries=self.max_retries, retry_exceptions=False,
                    name=f"nispa-run {plan.stem}",
                ).remote(task)
                in_flight[ref] = plan
            while in_flight:
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                plan = in_flight.pop(ref)
                result, reply = self._collect(ref, plan)
                lines.finished(result, reply)
                yield result
        finally:
            for ref in in_flight:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # the instance may already be gone
                    pass
            if started_here:
                ray.shutdown()

    def _connect(self) -> bool:
        """Join or start Ray; True when this call started it (and must stop it)."""
        if ray.is_initialized():
            return False
        address = self.address or os.environ.get("RAY_ADDRESS") or "local"
        options: dict[str, Any] = {"logging_level": logging.WARNING}
        if address == "local":
            options["include_dashboard"] = False
        try:
            ray.init(address=address, **options)
        except ConnectionError as err:
            raise ExecutorError(
                f"cannot join the Ray cluster at {address!r}: {err}. Start it first "
                "(`ray start --head` on its head node, or Ray's cluster launcher), or "
                "leave --ray-address out to start a local Ray instance"
            ) from None
        return True

    def _check_resources(self, local: bool) -> None:
        """On a local instance, refuse a run bigger than the machine: it would wait forever."""
        if not local:
            return
        available = ray.cluster_resources()
        for what, wanted in (("CPU", self.cpus_per_run), ("GPU", self.gpus_per_run)):
            if wanted and available.get(what, 0.0) < wanted:
                raise ExecutorError(
                    f"each run asks for {wanted:g} {what}(s) but this machine's Ray "
                    f"instance has {available.get(what, 0.0):g}: lower --{what.lower()}s-per-run"
                )

    def _collect(self, ref: Any, plan: RunPlan) -> tuple[RunResult, Optional[WorkerReply]]:
        """The result of a finished task: its record, or the failure it ended in."""
        try:
            reply = ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, DataUnavailable):
                raise DataUnavailable(str(cause)) from None
            summary = f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
            summary = summary.strip().splitlines()[-1] if summary.strip() else type(err).__name__
            where = _ANSI.sub("", str(err)).strip()  # "ray::<task> (pid, ip)" and the traceback
            return RunResult(plan, log_text=f"The run raised an exception in {where}\n", error=(
                f"raised {summary} (not retried; traceback in logs/{plan.stem}.log)")), None
        except ray.exceptions.RayError as err:
            error = (f"its worker died ({type(err).__name__}) in each of "
                     f"{self.max_retries + 1} attempt(s) (--max-retries {self.max_retries})")
            return RunResult(plan, log_text=f"{error}\n\n{err}\n", error=error), None
        return RunResult(plan, reply.record, log_text=reply.log_text), reply


class _RunLines:
    """One line per finished run, with the elapsed time and an estimate of what is left."""

    def __init__(self, runs: int, context: SweepContext) -> None:
        self.runs, self.done = runs, 0
        self.quiet = context.progress_mode == "off"
        self.stream = context.progress_stream or sys.stderr
        self.started = time.monotonic()

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def start(self, cpus: int, gpus: float) -> None:
        resources = ray.cluster_resources()
        per_run = f"{cpus} CPU" + (f", {gpus:g} GPU" if gpus else "")
        self._print(f"Ray: {self.runs} run(s) as tasks of {per_run} each, on "
                    f"{resources.get('CPU', 0):g} CPU(s) and {resources.get('GPU', 0):g} "
                    "GPU(s)")

    def finished(self, result: RunResult, reply: Optional[WorkerReply]) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = format_duration(elapsed * (self.runs - self.done) / self.done)
        if reply is not None:
            what = f"done in {format_duration(reply.seconds)} on {reply.host}"
        else:
            what = f"FAILED: {result.error}"
        self._print(f"[{self.done}/{self.runs} runs] {result.plan.label} seed "
                    f"{result.plan.seed} {what} — elapsed {format_duration(elapsed)}, ETA {eta}")
