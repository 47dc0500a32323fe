"""NISPA-Replay (:class:`avalanche_nispa.NISPAReplay`): class-incremental NISPA with a memory.

The sparse MLP has one output layer of ``n_classes`` units shared by every
experience (``NISPAMLP(..., class_incremental=True)``); the memory holds
``mem_size`` samples and its cross-entropy is weighted by ``replay_weight``.
Defaults are the replay spec's Split MNIST run (``nispa-replay-spec.md`` §4,
official script ``R/MNIST.sh``); the other NISPA settings are
:class:`~avalanche_nispa.NISPAReplayConfig`'s defaults (``min_phases`` 3, no
re-initialisation, the output layer never frozen). Class scenarios only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avalanche_nispa import NISPAReplay, NISPAReplayConfig

from ..entry import CLASS_ONLY
from .nispa import NISPAEntry, NISPAParams

__all__ = ["ENTRIES", "NISPAReplayParams"]


@dataclass(frozen=True)
class NISPAReplayParams(NISPAParams):
    optimizer: str = "sgd"  # spec §4: SGD without momentum
    density: float = 0.1  # spec §4: prune_perc 90
    lr: float = 0.1  # spec §4
    batch_size: int = 256  # spec §4 (the memory batch is the same)
    eval_batch_size: int = 512  # spec §4: test batch = 2 x train batch
    accuracy_drop_threshold: float = NISPAReplayConfig.accuracy_drop_threshold  # spec §4: a_f 0.5
    mem_size: int = NISPAReplayConfig.mem_size  # spec §4: M = 1000
    replay_weight: float = NISPAReplayConfig.replay_weight  # spec §4: λ = 5


class NISPAReplayEntry(NISPAEntry):
    """NISPA-Replay on the benchmark's backbone, one output layer over all classes."""

    name = "nispa_replay"
    order = 5
    demo = True  # --strategies auto on a class-incremental benchmark
    density_sweep = False
    plot_marker = "P"
    scenarios = CLASS_ONLY
    defaults = NISPAReplayParams()
    strategy_class = NISPAReplay
    config_class = NISPAReplayConfig

    def model_options(self, n_classes: int) -> dict[str, Any]:
        return {"num_classes": n_classes, "class_incremental": True}


#: The table row ``nispa_replay``.
ENTRIES = (NISPAReplayEntry(),)
