"""Stable-unit selection: ranks units by activation, keeps candidates, promotes them."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional

from torch import Tensor

from ..algorithm.selection import mean_activations, select_candidates_
from ..experiences import experience_name
from ..algorithm.units import freeze_stable_connections_, promote_candidates_
from ..sparse import PLASTIC
from ._common import current_task_label, input_batches, require_sparse_net
from .ordering import ExperienceEndPlugin

__all__ = ["StableSelectionPlugin"]


class StableSelectionPlugin(ExperienceEndPlugin):
    """Stable selection (spec §2.3, §2.6).

    Candidates are the fewest units of each hidden layer covering a fraction τ of the
    layer's mean activation on the current experience's training data, unioned with the
    stable units. At the end of the experience the candidates are promoted to stable,
    and the connections among stable units and the biases of stable units are frozen.

    Inside :class:`~avalanche_nispa.NISPA`, selection runs after every accepted phase
    with that phase's τ (``after_phase``). With any other strategy it runs
    once at the end of the experience with ``activation_fraction``; combine it with
    :class:`RewiringPlugin` (which cuts plastic inputs of stable units) and
    :class:`MaskingPlugin` (which keeps frozen weights frozen), otherwise stable units
    keep inputs from units that go on learning. In any list order, the end of an
    experience runs selection, then rewiring, then masking's re-init
    (:mod:`~avalanche_nispa.plugins.ordering`).

    :param activation_fraction: τ used when no phase loop selected candidates.
    :param demote_dead_candidates: return candidates with no stable or candidate input
        to the plastic pool (clean mode; the official code does not, spec §8.2).
    :param batch_size: batch size of the activation pass (default: the strategy's
        ``eval_mb_size``).
    :param freeze_output_layer: also freeze the connections into the stable units of
        the output layer (the task's head); NISPA-Replay's shared output layer stays
        trainable (replay spec §2.6).
    """

    def __init__(
        self,
        activation_fraction: float = 0.9,
        *,
        demote_dead_candidates: bool = True,
        batch_size: Optional[int] = None,
        freeze_output_layer: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= activation_fraction <= 1.0:
            raise ValueError(f"activation_fraction must be in [0, 1], got {activation_fraction}")
        self.activation_fraction = float(activation_fraction)
        self.demote_dead_candidates = demote_dead_candidates
        self.batch_size = batch_size
        self.freeze_output_layer = freeze_output_layer
        self._selected_this_experience = False
        self._warned_full: set = set()

    end_rank = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        super().before_training_exp(strategy, **kwargs)
        require_sparse_net(strategy.model, type(self).__name__)
        self._selected_this_experience = False

    def select(self, strategy, fraction: float, activations: Optional[List[Tensor]] = None) -> None:
        """Recompute the candidates with activation fraction ``fraction``; activations
        are measured on ``strategy.adapted_dataset`` unless given."""
        model = require_sparse_net(strategy.model, type(self).__name__)
        if activations is None:
            # a strategy holding the split as tensors (NISPA's cache_data) says so
            # through ``selection_inputs``; any other strategy is read through its dataset
            source = getattr(strategy, "selection_inputs", strategy.adapted_dataset)
            batch_size = self.batch_size or strategy.eval_mb_size or strategy.train_mb_size
            batches = input_batches(source, batch_size, strategy.device)
            activations = mean_activations(model, batches, experience_name(strategy.experience))
        select_candidates_(
            model, activations, fraction, demote_dead=self.demote_dead_candidates,
            task_label=current_task_label(strategy),
        )
        self._selected_this_experience = True
        self._warn_if_full(model)

    def _warn_if_full(self, model) -> None:
        for i, layer in enumerate(model.hidden_layers()):
            if not bool((layer.unit_state == PLASTIC).any()) and i not in self._warned_full:
                self._warned_full.add(i)
                warnings.warn(
                    f"hidden layer {i} has no plastic unit left: its capacity is exhausted, so "
                    "no connection can grow into it and later tasks can only reuse its stable "
                    "units. Training goes on; a wider layer or a higher density would help.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def after_phase(self, strategy, *, phase: int, tau: float, activations=None,
                    decision=None, **kwargs) -> None:
        if decision is None or not decision.stop:
            self.select(strategy, tau, activations)

    def state_dict(self) -> Dict[str, Any]:
        return {"warned_full_layers": sorted(int(i) for i in self._warned_full)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._warned_full = set(int(i) for i in state["warned_full_layers"])

    def end_experience(self, strategy) -> None:
        model = require_sparse_net(strategy.model, type(self).__name__)
        if not self._selected_this_experience:
            self.select(strategy, self.activation_fraction)
        promote_candidates_(model.hidden_layers())
        links = model.layer_links(current_task_label(strategy))
        if not self.freeze_output_layer:
            links = [link for link in links if not link.is_head]
        freeze_stable_connections_(links)
