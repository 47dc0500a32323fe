"""Neurogenesis: new plastic units when a hidden layer runs out of them (see
:mod:`avalanche_nispa.algorithm.neurogenesis`)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from ..algorithm.neurogenesis import connect_new_units_, units_to_add
from ..models.growth import built_widths, consumer_groups, grow_hidden_units_
from ._common import require_sparse_net
from .base import NISPAPlugin

__all__ = ["NeurogenesisPlugin"]


class NeurogenesisPlugin(NISPAPlugin):
    """Neurogenesis (beyond the paper; issue 15 §3).

    At the start of every experience, each hidden layer whose plastic units are fewer
    than ``below`` of its units grows new plastic units: as many as bring it back to
    ``below``, at most ``bound`` of its current units. They read every unit of the
    layer before and feed only plastic units, so old tasks' outputs stay bit-identical
    and forgetting stays exactly 0; their connections come at the network's density
    (or ``density``), so the active parameters grow with them.

    ``history`` lists, per experience, the units added per hidden layer (``added``),
    the widths after (``widths``) and the connections drawn into each hidden layer and
    the heads (``connections``); checkpoints keep it (the network keeps its shapes).

    :param below: plastic share in (0, 1) under which a layer grows units.
    :param bound: largest number of new units per experience, as a share in (0, 1] of
        the layer's current units.
    :param density: connection density of the new units (default: the network's).
    :param generator: random stream of the new connections (``None``: torch's global).
    """

    def __init__(self, below: float, bound: float = 0.05, *, density: Optional[float] = None,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 < below < 1:
            raise ValueError(f"below must be a fraction in (0, 1), got {below!r}")
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound <= 1:
            raise ValueError(f"bound must be a fraction in (0, 1], got {bound!r}")
        if density is not None and not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1] or None, got {density!r}")
        self.below = float(below)
        self.bound = float(bound)
        self.density = density
        self.generator = generator
        self.history: List[Dict[str, Any]] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        model = require_sparse_net(strategy.model, type(self).__name__)
        names = [name for name, _ in model.named_hidden_layers()]
        counts = [units_to_add(layer.unit_state, self.below, self.bound)
                  for layer in model.hidden_layers()]
        connections = [0] * (len(counts) + 1)
        if any(counts):
            groups = consumer_groups(model)
            grow_hidden_units_(model, counts)
            density = self.density if self.density is not None else model.density
            connections = connect_new_units_(model, counts, density, groups, self.generator)
        self.history.append({
            "experience": int(strategy.clock.train_exp_counter), "layers": names,
            "added": counts, "widths": [layer.out_units for layer in model.hidden_layers()],
            "built_widths": built_widths(model), "connections": connections})

    @property
    def widths(self) -> List[int]:
        """Each hidden layer's units after the latest experience's growth."""
        return list(self.history[-1]["widths"]) if self.history else []

    def state_dict(self) -> Dict[str, Any]:
        return {"history": [{k: (list(v) if isinstance(v, list) else int(v)) for k, v in h.items()}
                            for h in self.history],
                "generator": None if self.generator is None else self.generator.get_state()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.history = [dict(h) for h in state["history"]]
        if state["generator"] is not None and self.generator is not None:
            self.generator.set_state(state["generator"])
