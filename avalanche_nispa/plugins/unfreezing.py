"""Selective unfreezing: stable units of low importance go back to the plastic pool
when a layer runs out of plastic units (see :mod:`avalanche_nispa.algorithm.unfreezing`)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from ..algorithm.selection import mean_activations
from ..algorithm.unfreezing import (
    UNFREEZE_IMPORTANCES,
    UNFREEZE_OUTGOING,
    UnfreezeImportance,
    UnfreezeOutgoing,
    choose_units_to_release,
    drop_outgoing_into_stable_,
    release_units_,
    units_to_release,
    update_importance,
)
from ..experiences import experience_name
from ..rng import preserved_rng
from ._common import hidden_layer_consumers, input_batches, require_sparse_net
from .ordering import ExperienceEndPlugin

__all__ = ["SelectiveUnfreezingPlugin"]


class SelectiveUnfreezingPlugin(ExperienceEndPlugin):
    """Selective unfreezing (beyond the paper; its authors name it as future work).

    At the start of every experience, each hidden layer whose plastic units are fewer
    than ``below`` of its units releases its least important stable units, as many as
    bring it back to ``below`` and at most ``bound`` of its units. A released unit is
    plastic again: its incoming connections and bias are trainable, growth can target
    it and selection can pick it again. With ``outgoing="drop"`` (default) its
    connections into stable units (of the next layer, or every head) are removed at
    the release: old tasks lose its contribution once and are protected exactly again
    afterwards. With ``"keep"`` they stay, frozen, so old tasks reading the unit see it
    change under every later task. Every other frozen weight and bias stays bit for
    bit. Either way old tasks' forgetting can exceed 0.

    With ``importance="activation"`` a unit's importance is its largest share of its
    layer's stable activation over the experiences it was stable in, measured at the
    end of each experience (after promotion, rewiring and re-initialisation, so as
    the task's test will see it) on the experience's training split;
    ``"downstream"``: its largest share of the input of a stable unit it feeds,
    measured the same way; ``"random"`` releases random stable units (a control). Ties are broken at random with
    ``generator`` (``None``: the global torch generator).

    ``history`` lists, per experience, how many units each hidden layer released
    (``released``), which (``units``) and how many of their connections into stable
    units were removed (``dropped_outgoing``); checkpoints keep it and the importance.

    :param below: plastic share in (0, 1] under which a layer releases units.
    :param bound: largest share in [0, 1] of a layer's units released per experience.
    :param importance: ``"activation"``, ``"downstream"`` or ``"random"``.
    :param outgoing: ``"drop"`` or ``"keep"``: the released units' connections into
        stable units (see :mod:`avalanche_nispa.algorithm.unfreezing`).
    :param batch_size: batch size of the activation pass (default: the strategy's
        ``eval_mb_size``).
    """

    end_rank = 3

    def __init__(self, below: float, bound: float = 0.05,
                 importance: UnfreezeImportance = "activation", *,
                 outgoing: UnfreezeOutgoing = "drop",
                 batch_size: Optional[int] = None,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 < below <= 1:
            raise ValueError(f"below must be a fraction in (0, 1], got {below!r}")
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 <= bound <= 1:
            raise ValueError(f"bound must be a fraction in [0, 1], got {bound!r}")
        if importance not in UNFREEZE_IMPORTANCES:
            raise ValueError(f"importance must be one of {UNFREEZE_IMPORTANCES}, got {importance!r}")
        self.below = float(below)
        self.bound = float(bound)
        if outgoing not in UNFREEZE_OUTGOING:
            raise ValueError(f"outgoing must be one of {UNFREEZE_OUTGOING}, got {outgoing!r}")
        self.importance_kind: UnfreezeImportance = importance
        self.outgoing: UnfreezeOutgoing = outgoing
        self.batch_size = batch_size
        self.generator = generator
        self.importance: List[Optional[Tensor]] = []
        self.history: List[Dict[str, Any]] = []

    # ----------------------------------------------------------- release
    def before_training_exp(self, strategy, **kwargs) -> None:
        super().before_training_exp(strategy, **kwargs)
        model = require_sparse_net(strategy.model, type(self).__name__)
        names, released, units, dropped = [], [], [], []
        consumers = hidden_layer_consumers(model)
        for i, (name, layer) in enumerate(model.named_hidden_layers()):
            importance = self._importance_of(i, layer)
            count = units_to_release(layer.unit_state, self.below, self.bound)
            chosen = choose_units_to_release(layer.unit_state, importance, count, self.generator)
            released.append(release_units_(layer, chosen) if count else 0)
            units.append(chosen.nonzero().squeeze(1).tolist() if count else [])
            dropped.append(sum(drop_outgoing_into_stable_(consumer, chosen, group)
                               for consumer, group in consumers[i])
                           if count and self.outgoing == "drop" else 0)
            importance[chosen.to(importance.device)] = 0.0
            names.append(name)
        self.history.append({"experience": int(strategy.clock.train_exp_counter),
                             "layers": names, "released": released, "units": units,
                             "dropped_outgoing": dropped})

    @property
    def last_released(self) -> Dict[str, int]:
        """Units released per hidden layer at the start of the latest experience."""
        if not self.history:
            return {}
        last = self.history[-1]
        return dict(zip(last["layers"], last["released"]))

    def _importance_of(self, index: int, layer) -> Tensor:
        while len(self.importance) <= index:
            self.importance.append(None)
        if self.importance[index] is None:
            self.importance[index] = torch.zeros(layer.out_units, dtype=torch.float64,
                                                 device=layer.unit_state.device)
        grown = layer.out_units - self.importance[index].numel()
        if grown > 0:  # units added by neurogenesis: never stable yet
            self.importance[index] = torch.cat([self.importance[index], self.importance[
                index].new_zeros(grown)])
        return self.importance[index]

    # --------------------------------------------------------- importance
    def end_experience(self, strategy) -> None:
        if self.importance_kind == "random":
            return
        model = require_sparse_net(strategy.model, type(self).__name__)
        source = getattr(strategy, "selection_inputs", strategy.adapted_dataset)
        batch_size = self.batch_size or strategy.eval_mb_size or strategy.train_mb_size
        with preserved_rng():  # the measurement draws nothing a seeded run would draw
            activations = mean_activations(model, input_batches(source, batch_size, strategy.device),
                                           experience_name(strategy.experience))
        consumers = (hidden_layer_consumers(model) if self.importance_kind == "downstream"
                     else [None] * len(activations))
        for i, (layer, activation) in enumerate(zip(model.hidden_layers(), activations)):
            self.importance[i] = update_importance(self._importance_of(i, layer), activation,
                                                   layer.unit_state, consumers[i])

    # -------------------------------------------------------- checkpoints
    def state_dict(self) -> Dict[str, Any]:
        return {
            "importance": [None if t is None else t.detach().cpu() for t in self.importance],
            "history": [{"experience": int(h["experience"]), "layers": list(h["layers"]),
                         "released": [int(r) for r in h["released"]],
                         "units": [[int(u) for u in layer] for layer in h["units"]],
                         "dropped_outgoing": [int(d) for d in h.get("dropped_outgoing",
                                                                    [0] * len(h["layers"]))]}
                        for h in self.history],
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.importance = [None if t is None else t.clone() for t in state["importance"]]
        self.history = [dict(h) for h in state["history"]]
        if state["generator"] is not None and self.generator is not None:
            self.generator.set_state(state["generator"])
