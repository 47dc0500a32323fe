"""NISPA-Replay: the authors' class-incremental NISPA (replay spec), on the same
phase loop, plugins and configuration as the task-incremental :class:`NISPA`.

What changes (replay spec §2): one shared sparse output layer over every class, with
live logits for all of them (``NISPAMLP(..., num_classes=10, class_incremental=True)``);
a class-balanced memory of ``mem_size`` samples, replayed beside every minibatch with
weight λ (:class:`~avalanche_nispa.plugins.replay.MemoryReplayPlugin`); the stop test
only after ``min_phases``; each phase's last epoch kept; the output layer never
frozen; no re-initialisation at the end of an experience.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..config import NISPAConfig, config_from_kwargs
from ..plugins.replay import MemoryReplayPlugin
from .nispa import NISPA, signature_with_config

__all__ = ["NISPAReplay", "NISPAReplayConfig"]


@dataclass(frozen=True)
class NISPAReplayConfig(NISPAConfig):
    """NISPA-Replay's hyperparameters: :class:`~avalanche_nispa.NISPAConfig`'s, with the
    replay spec's Split MNIST values as defaults (``R/MNIST.sh``), plus the memory.

    :param mem_size: samples the memory holds at most (Avalanche's name; spec
        ``--memo_size``: 1000).
    :param replay_weight: λ, the weight of the memory's cross-entropy (spec 5 on Split
        MNIST and CIFAR-10, 1 on EF-MNIST).

    The optimizer (SGD, lr 0.1), batch size (256) and density (10 %) of the spec's
    Split MNIST run belong to the optimizer, the strategy and the model.
    """

    accuracy_drop_threshold: float = 0.5  # R/MNIST.sh: --recovery_perc 0.5
    reinit_after_experience: bool = False  # spec §2.6: reinit 0
    min_phases: int = 3  # R/MNIST.sh: --min_phases 3
    keep_best_epoch: bool = False  # spec §2.2: the last epoch of a phase
    freeze_output_layer: bool = False  # spec §2.6: the output layer is never frozen
    mem_size: int = 1000  # R/MNIST.sh: --memo_size 1000
    replay_weight: float = 5.0  # R/MNIST.sh: --replay_lambda 5

    def __post_init__(self) -> None:
        super().__post_init__()
        size = self.mem_size
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"mem_size must be a positive integer, got {size!r}")
        weight = self.replay_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"replay_weight (λ) must be a number >= 0, got {weight!r}")


class NISPAReplay(NISPA):
    """Class-incremental NISPA with a replay memory (Gurbuz & Dovrolis, official
    ``NISPA_Replay``). Takes the arguments of :class:`NISPA`, with a
    :class:`NISPAReplayConfig` (each field also as a keyword, e.g. ``mem_size=1000``).

    The stream is class-incremental (Avalanche's default ``SplitMNIST``): one task
    label, no task id at test time. A stream whose experiences carry different task
    labels is refused before training, naming :class:`NISPA`, the task-incremental
    strategy. ``replay_plugin.memory`` is the memory; checkpoints hold its contents.
    """

    CONFIG_CLASS = NISPAReplayConfig
    CLASS_INCREMENTAL = True

    def __init__(self, *, model, optimizer, config: Optional[NISPAReplayConfig] = None,
                 plugins=None, **kwargs: Any) -> None:
        config = config_from_kwargs(config, kwargs, NISPAReplayConfig)
        self.replay_plugin = MemoryReplayPlugin(config.mem_size, config.replay_weight)
        super().__init__(model=model, optimizer=optimizer, config=config,
                         plugins=[self.replay_plugin] + list(plugins or []), **kwargs)

    __init__.__signature__ = signature_with_config(__init__, NISPAReplayConfig)  # type: ignore[attr-defined]
