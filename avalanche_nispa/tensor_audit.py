"""An audit of the tensor operations a run makes, for what a CPU cannot show about a GPU.

Two mistakes cost nothing on a CPU and a lot on a GPU, so no CPU test notices them:

- a **host synchronisation** in the per-step path (``loss.item()``, ``if mask.any():``,
  ``x[bool_mask]``, ``.cpu()``, a blocking ``.to(device)``): the CPU waits for the GPU
  at every step and the GPU then waits for the CPU's next kernels;
- a tensor **created without a device** (``torch.zeros(n)``, ``torch.randperm(n)``):
  it lands on the CPU, and meets the model's CUDA tensors in an error, or in a silent
  copy at every use.

:class:`TensorAudit` is a ``torch.overrides.TorchFunctionMode`` that watches every
torch call while it is active and records, with the file and line of the code
responsible, (1) the host synchronisations made while :attr:`TensorAudit.in_step` is
set (:class:`StepAuditPlugin` sets it from ``before_training_iteration`` to
``after_training_iteration``) and (2) the tensor factories called without an
explicit ``device=``. Only code under ``roots`` (default: this package) is blamed: a
synchronisation belongs to the innermost frame outside torch (so a ``torch.unique``
called by the library is the library's), a factory to its direct caller (torch's
own internals choose their devices on purpose).

Example::

    audit = TensorAudit()
    strategy = NISPA(model=model, optimizer=optimizer, plugins=[StepAuditPlugin(audit)])
    with audit:
        strategy.train(stream[0])
    assert not audit.step_syncs, audit.report()
"""
from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from avalanche.core import SupervisedPlugin

__all__ = ["AuditEvent", "TensorAudit", "StepAuditPlugin", "HOST_SYNC_OPS", "FACTORY_OPS"]

HOST_SYNC_OPS = frozenset({
    # a value read on the host
    "item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__",
    "__complex__", "__format__", "__repr__", "__str__", "__array__", "__contains__",
    "equal", "allclose",
    # an output whose size depends on the values
    "nonzero", "argwhere", "unique", "unique_consecutive", "masked_select", "bincount",
})
"""Torch calls that always wait for the device. Some calls only do with certain
arguments, checked by :func:`_is_host_sync`: ``where(cond)`` with one argument,
``repeat_interleave`` with tensor repeats, indexing with a boolean mask, and a
blocking ``to(device)`` / ``cuda()``."""

FACTORY_OPS = frozenset({
    "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange",
    "range", "linspace", "logspace", "eye", "tensor", "as_tensor", "scalar_tensor",
    "empty_strided", "tril_indices", "triu_indices",
})
"""Torch functions that create a tensor on the default device unless told otherwise."""

_PACKAGE = Path(__file__).resolve().parent
_TORCH = Path(torch.__file__).resolve().parent
_THIS_FILE = Path(__file__).resolve()


@dataclass(frozen=True)
class AuditEvent:
    """One recorded call: the torch operation and the code responsible."""

    op: str
    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.op} at {self.file}:{self.line} (in {self.function})"


def _is_bool_index(index: Any) -> bool:
    if isinstance(index, Tensor):
        return index.dtype == torch.bool
    if isinstance(index, (tuple, list)):
        return any(_is_bool_index(part) for part in index)
    return False


def _is_host_sync(name: str, args: Sequence[Any], kwargs: Dict[str, Any]) -> bool:
    if name in HOST_SYNC_OPS:
        return True
    if name == "where":
        return len(args) + len(kwargs) == 1
    if name == "repeat_interleave":
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return isinstance(repeats, Tensor) and kwargs.get("output_size") is None
    if name in ("__getitem__", "__setitem__", "index_put", "index_put_"):
        return len(args) > 1 and _is_bool_index(args[1])
    if name in ("to", "cuda"):
        moves = name == "cuda" or "device" in kwargs or any(
            isinstance(a, (str, torch.device, Tensor)) for a in args[1:])
        return moves and not kwargs.get("non_blocking", False)
    return False


def _within(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _frames() -> Iterable[Tuple[Path, int, str]]:
    """(file, line, function) of the callers of the audit, innermost first."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            path = Path(frame.f_code.co_filename).resolve()
            if path != _THIS_FILE:
                yield path, frame.f_lineno, frame.f_code.co_name
            frame = frame.f_back
    finally:
        del frame


class TensorAudit(TorchFunctionMode):
    """Records the host synchronisations made inside training steps and the tensors
    created without a device by code under ``roots``.

    :param roots: files or directories whose code is audited (default: the
        ``avalanche_nispa`` package).

    Attributes: ``step_syncs`` and ``unplaced`` (lists of :class:`AuditEvent`),
    ``other_step_syncs`` (a ``Counter`` by operation of the synchronisations that
    other code, Avalanche's loop or the optimizer, made inside steps), ``steps`` (the
    training steps seen) and ``in_step``.
    """

    def __init__(self, roots: Optional[Sequence[Any]] = None) -> None:
        super().__init__()
        self.roots = [Path(r).resolve() for r in (roots or [_PACKAGE])]
        self.in_step = False
        self.steps = 0
        self.step_syncs: List[AuditEvent] = []
        self.other_step_syncs: Counter = Counter()
        self.unplaced: List[AuditEvent] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if self.in_step and _is_host_sync(name, args, kwargs):
            self._blame_sync(name)
        if name in FACTORY_OPS and kwargs.get("device") is None:
            self._blame_factory(name)
        return func(*args, **kwargs)

    def _blame_sync(self, name: str) -> None:
        for path, line, function in _frames():
            if _within(path, [_TORCH]):
                continue
            if _within(path, self.roots):
                self.step_syncs.append(AuditEvent(name, str(path), line, function))
            else:
                self.other_step_syncs[name] += 1
            return

    def _blame_factory(self, name: str) -> None:
        for path, line, function in _frames():
            if path.name == "overrides.py" and _within(path, [_TORCH]):
                continue  # torch's dispatch to this mode
            if _within(path, self.roots) and not _within(path, [_TORCH]):
                self.unplaced.append(AuditEvent(name, str(path), line, function))
            return

    def report(self) -> str:
        """Every finding, one per line (distinct places, with counts)."""
        lines = [f"{self.steps} training steps audited"]
        for title, events in (("host synchronisations inside training steps", self.step_syncs),
                              ("tensors created without a device", self.unplaced)):
            counts = Counter(str(event) for event in events)
            lines.append(f"{title}: {sum(counts.values())}")
            lines += [f"  {count} x {where}" for where, count in counts.most_common()]
        others = ", ".join(f"{op} x {n}" for op, n in self.other_step_syncs.most_common())
        lines.append(f"synchronisations by other code inside steps: {others or 'none'}")
        return "\n".join(lines)


class StepAuditPlugin(SupervisedPlugin):
    """Marks the training steps for a :class:`TensorAudit`: from
    ``before_training_iteration`` to ``after_training_iteration``. Put it last in the
    plugin list, so that every other plugin's step callbacks fall inside."""

    def __init__(self, audit: TensorAudit) -> None:
        super().__init__()
        self.audit = audit

    def before_training_iteration(self, strategy, **kwargs) -> None:
        self.audit.in_step = True

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.audit.in_step = False
        self.audit.steps += 1
