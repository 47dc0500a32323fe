"""NISPA-Replay's replay loss and memory (replay spec §2.8-2.9), as a plugin.

From the second experience on, every training minibatch of ``B`` current samples is
joined by ``B`` memory samples (one forward pass over both; there is no BatchNorm or
dropout to tell them apart), and the loss becomes

    L = CE(f(x_cur), y_cur) + λ · CE(f(x_mem), y_mem),

each cross-entropy a mean over its own part, over all outputs. The memory batches come
from an endless loop over the whole memory, reshuffled at every pass and restarted at
every phase, with the last partial batch kept, as the official code does. Avalanche's
``ReplayPlugin`` instead concatenates memory into the minibatch under one mean loss,
which cannot weight the memory by λ: this plugin is NISPA-Replay's default.

After the phases of an experience (and after NISPA's promotion and freezing), all of
its training samples, the validation part included, are added to the class-balanced
memory (:class:`~avalanche_nispa.algorithm.memory.ClassBalancedMemory`), as tensors
after the experience's evaluation transforms (no augmentation is stored). The memory
lives on the strategy's device (a loaded checkpoint's memory moves there too), so no
step copies it, and no step waits for the device: the memory's batch order is drawn
on the CPU and copied without blocking.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

import torch
from torch import Tensor

from avalanche.evaluation.metric_results import MetricValue

from .._avalanche import criterion_of
from ..algorithm.memory import ClassBalancedMemory
from ..data_cache import TensorBatches, materialize
from .base import NISPAPlugin

__all__ = ["MemoryReplayPlugin"]


class MemoryReplayPlugin(NISPAPlugin):
    """Class-balanced memory of ``mem_size`` samples replayed with weight
    ``replay_weight`` (λ) beside every current minibatch.

    :param mem_size: samples the memory holds at most (spec: 1000 on Split MNIST).
    :param replay_weight: λ, the weight of the memory loss (spec: 5 on Split MNIST).
    """

    def __init__(self, mem_size: int, replay_weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(replay_weight, (int, float)) or not replay_weight >= 0:
            raise ValueError(f"replay_weight (λ) must be a number >= 0, got {replay_weight!r}")
        self.memory = ClassBalancedMemory(mem_size)
        self.replay_weight = float(replay_weight)
        self._batches: Optional[Iterator[List[Tensor]]] = None
        self._current = 0  # current samples at the head of the joined minibatch

    # --------------------------------------------------------------- the loss
    def before_phase(self, strategy, *, phase: int, tau: float, **kwargs) -> None:
        stored = self.memory.to_(strategy.device).tensors()
        self._batches = None if stored is None else _endless(
            TensorBatches(list(stored), strategy.train_mb_size))

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.before_phase(strategy, phase=0, tau=1.0)  # outside NISPA's phase loop

    def before_forward(self, strategy, **kwargs) -> None:
        self._current = 0
        if self._batches is None:
            return
        x_mem, y_mem = next(self._batches)
        batch = strategy.mbatch
        self._current = int(batch[0].shape[0])
        # the memory's samples take the current batch's task label, read on the device
        task_mem = batch[-1][:1].expand(y_mem.shape[0])
        strategy.mbatch = [torch.cat([batch[0], x_mem]), torch.cat([batch[1], y_mem]),
                           *batch[2:-1], torch.cat([batch[-1], task_mem])]

    def before_backward(self, strategy, **kwargs) -> None:
        if not self._current:
            return
        criterion = criterion_of(strategy)
        cut = self._current
        output, target = strategy.mb_output, strategy.mb_y
        strategy.loss = criterion(output[:cut], target[:cut]) + self.replay_weight * criterion(
            output[cut:], target[cut:])

    # ------------------------------------------------------------- the memory
    def after_training_exp(self, strategy, **kwargs) -> None:
        inputs, targets = materialize(strategy.experience.dataset.eval())[:2]
        self.memory.add(inputs, targets)  # sampled on the CPU, then kept on the device
        self.memory.to_(strategy.device)
        self._batches = None
        evaluator = getattr(strategy, "evaluator", None)
        if evaluator is not None:
            x = strategy.clock.train_exp_counter + 1
            for name, value in (("NISPA_memory_samples", len(self.memory)),
                                ("NISPA_memory_bytes", self.memory.nbytes())):
                evaluator.publish_metric_value(
                    MetricValue(self, f"{name}/train_phase/train_stream", value, x))

    def state_dict(self) -> Dict[str, Any]:
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.memory.load_state_dict(state["memory"])


def _endless(batches: TensorBatches) -> Iterator[List[Tensor]]:
    while True:
        yield from batches
