"""NISPA's algorithm as functions on tensors and masked layers, with no Avalanche
import: the τ schedules, the phase controller's stop rule, candidate selection,
dropping and regrowing connections, and unit promotion and freezing.

The Avalanche glue (the strategy and its plugins) calls these; a new growth rule or
selection criterion goes here, as a function, and is tested on small layers alone.
"""
from .links import LayerLink, source_states
from .phases import PhaseController, PhaseDecision
from .rewiring import RewiringReport, rewire_
from .schedules import make_tau_schedule, validate_tau_schedule
from .selection import mean_activations, minimal_covering_units, select_candidates_
from .units import count_parameters, freeze_stable_connections_, promote_candidates_, unit_state_summary

__all__ = [
    "LayerLink",
    "source_states",
    "PhaseController",
    "PhaseDecision",
    "RewiringReport",
    "rewire_",
    "make_tau_schedule",
    "validate_tau_schedule",
    "mean_activations",
    "minimal_covering_units",
    "select_candidates_",
    "count_parameters",
    "freeze_stable_connections_",
    "promote_candidates_",
    "unit_state_summary",
]
