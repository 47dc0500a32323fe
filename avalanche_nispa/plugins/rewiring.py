"""Rewiring: drop plastic→stable connections, regrow as many into plastic units."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from ..algorithm.growth import get_growth_rule
from ..algorithm.rewiring import (
    GrowthInit,
    RewireAlgorithm,
    RewiringReport,
    check_rewiring_choices,
    rewire_,
)
from ._common import current_task_label, require_sparse_net
from .gradients import dense_gradients
from .ordering import ExperienceEndPlugin

__all__ = ["RewiringPlugin"]


class RewiringPlugin(ExperienceEndPlugin):
    """Rewiring (spec §2.4, §2.5).

    Drops every connection from a plastic unit into a stable or candidate unit, then
    grows the same number of connections per layer into plastic units, so density is
    kept. Inside :class:`~avalanche_nispa.NISPA` it runs after every accepted phase
    (``after_phase``); it also runs at the end of every experience, after
    :class:`StableSelectionPlugin` promoted its candidates, which in NISPA finds nothing
    left to drop and with any other strategy cuts the plastic inputs of the new stable
    units (in any list order: :mod:`~avalanche_nispa.plugins.ordering`).

    :param rewire_algo: which absent connections may grow: ``"full_random"`` (any
        source, official), ``"forwardT_random"`` (stable→plastic) or ``"flow_random"``
        (plastic→plastic); a ``full_random`` pass places what these cannot.
    :param growth_init: initial value of grown weights: ``"normal"`` (official: drawn
        from N(mean, std) of the layer's non-zero weights), ``"uniform"`` or ``"zero"``.
    :param connect_isolated_units: first give each plastic unit with no outgoing
        connection one (official ``fix_no_outgoing``).
    :param original_flatten_bug: reproduce the official code's conv→linear index bug in
        that step (spec §8.3).
    :param growth_rule: the growth rule by name (:mod:`avalanche_nispa.algorithm.growth`);
        ``None`` (default): the random rule ``rewire_algo``. ``"rigl"`` grows where the
        dense gradient is largest, ``"ch3l3"`` by the CH3-L3 link predictor.
    :param gradient_batches: for a gradient rule, the training minibatches (in order)
        whose loss gradient is measured at each rewiring, before the drop
        (:mod:`~avalanche_nispa.plugins.gradients`).
    """

    end_rank = 1

    def __init__(
        self,
        rewire_algo: RewireAlgorithm = "full_random",
        growth_init: GrowthInit = "normal",
        *,
        connect_isolated_units: bool = True,
        original_flatten_bug: bool = False,
        generator: Optional[torch.Generator] = None,
        growth_rule: Optional[str] = None,
        gradient_batches: int = 4,
    ) -> None:
        super().__init__()
        check_rewiring_choices(rewire_algo, growth_init)
        self.growth_rule = get_growth_rule(rewire_algo if growth_rule is None else growth_rule).name
        if not isinstance(gradient_batches, int) or gradient_batches < 1:
            raise ValueError(f"gradient_batches must be a positive integer, got {gradient_batches!r}")
        self.gradient_batches = gradient_batches
        self.rewire_algo: RewireAlgorithm = rewire_algo
        self.growth_init: GrowthInit = growth_init
        self.connect_isolated_units = connect_isolated_units
        self.original_flatten_bug = original_flatten_bug
        self.generator = generator
        self.history: List[RewiringReport] = []

    def rewire(self, strategy) -> RewiringReport:
        model = require_sparse_net(strategy.model, type(self).__name__)
        gradients = None
        if "gradient" in get_growth_rule(self.growth_rule).needs:
            def gradients(links):
                return dense_gradients(strategy, links, self.gradient_batches)
        report = rewire_(
            model.layer_links(current_task_label(strategy)),
            algorithm=self.growth_rule,
            init=self.growth_init,
            connect_isolated=self.connect_isolated_units,
            original_flatten_bug=self.original_flatten_bug,
            generator=self.generator,
            gradients=gradients,
        )
        self.history.append(report)
        return report

    def after_phase(self, strategy, *, phase: int, tau: float, activations=None,
                    decision=None, **kwargs) -> None:
        if decision is None or not decision.stop:
            self.rewire(strategy)

    def state_dict(self) -> Dict[str, Any]:
        return {
            "history": [{"layers": list(r.layers), "dropped": [int(d) for d in r.dropped],
                         "grown": [int(g) for g in r.grown]} for r in self.history],
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.history = [RewiringReport(list(r["layers"]), list(r["dropped"]), list(r["grown"]))
                        for r in state["history"]]
        if state["generator"] is not None and self.generator is not None:
            self.generator.set_state(state["generator"].cpu())  # a CPU byte tensor

    def end_experience(self, strategy) -> None:
        self.rewire(strategy)
