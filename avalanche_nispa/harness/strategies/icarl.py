"""iCaRL (Avalanche's ``ICaRL``): exemplar memory, distillation, nearest-mean-of-exemplars.

Avalanche's iCaRL takes the network in two parts: the backbone's features
(:func:`~avalanche_nispa.harness.models.build_features`, the same layers as
the other baselines) and a linear classifier over all classes; it trains with
its own binary cross-entropy (``ICaRLLossPlugin``, so the common criterion is
dropped) and evaluates with a nearest-mean-of-exemplars classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from avalanche.training import ICaRL

from ..entry import CLASS_ONLY, BuiltStrategy, DenseEntry, make_optimizer
from ..models import build_features
from ..params import Backbone, Hyperparameters, Training

__all__ = ["ENTRIES", "ICaRLParams"]


@dataclass(frozen=True)
class ICaRLParams(Hyperparameters):
    memory_size: int = 1000  # the comparison's one memory size (spec §6: iCaRL buffer 1000)
    fixed_memory: bool = True  # Avalanche's iCaRL example: memory_size split over seen classes


class ICaRLEntry(DenseEntry):
    """iCaRL on the dense backbone split into features and a classifier over all classes."""

    def build(
        self, backbone: Backbone, n_classes: int, hp: Mapping[str, Any], n_experiences: int,
        kwargs: dict[str, Any], *, scenario: str = "task",
    ) -> BuiltStrategy:
        training, params = Training.from_dict(hp), ICaRLParams.from_dict(hp)
        features, width = build_features(backbone)
        classifier = nn.Linear(width, n_classes)
        optimizer = make_optimizer(training, [*features.parameters(), *classifier.parameters()])
        kwargs.pop("criterion")  # iCaRL brings its own loss
        strategy = ICaRL(
            feature_extractor=features, classifier=classifier, optimizer=optimizer,
            buffer_transform=None, **params.as_dict(), **kwargs,
        )
        return BuiltStrategy(self, strategy, strategy.model, int(training.epochs))


#: The table row ``icarl``.
ENTRIES = (ICaRLEntry("icarl", 78, ICaRLParams(), ICaRL, scenarios=CLASS_ONLY),)
