"""Growth rules: which absent connections NISPA grows into plastic units (spec §2.5).

Every rule implements the interface of :mod:`.base` (a :class:`GrowthRequest` in,
flat indices of the connections to grow out) and registers itself by name with
:func:`growth_rule`. Every module of this package is imported here, so a new rule is
one function in one new file of this folder; ``NISPAConfig(growth_rule=...)`` then
finds it by name.

Provided: ``full_random`` (the paper's), ``forwardT_random`` and ``flow_random`` (the
official code's other ``--rewire_algo`` options), ``rigl`` (gradient magnitude,
Evci et al. 2020) and ``ch3l3`` (the Cannistraci-Hebb CH3-L3 link predictor on the
layer's bipartite graph). The official code also defines a ``progressive_rewiring``
function that nothing calls; the specifications list it as unused without describing
what it does (spec §8 item 11, replay spec §7 item 8), so no rule of that name is
offered.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Dict, Tuple

from .base import (
    NEEDS,
    GrowthRequest,
    GrowthRule,
    check_rule_output,
    connection_scores,
    free_positions,
    growth_rule,
    registered_rules,
    sample_uniform,
    top_scoring,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "NEEDS",
    "RULES",
    "GrowthRequest",
    "GrowthRule",
    "check_growth_rule",
    "check_rule_output",
    "connection_scores",
    "free_positions",
    "get_growth_rule",
    "growth_rule",
    "growth_rule_names",
    "registered_rules",
    "sample_uniform",
    "top_scoring",
]


def growth_rule_names() -> Tuple[str, ...]:
    """The names of every registered rule, sorted."""
    return tuple(sorted(registered_rules()))


def check_growth_rule(name: object) -> None:
    """Refuse a name that is no registered rule, listing the known ones."""
    if not isinstance(name, str) or name not in registered_rules():
        raise ValueError(f"unknown growth rule {name!r}; known: {', '.join(growth_rule_names())}")


def get_growth_rule(name: str) -> GrowthRule:
    """The rule registered as ``name`` (unknown names are refused, listing the known)."""
    check_growth_rule(name)
    return registered_rules()[name]


RULES: Dict[str, GrowthRule] = registered_rules()
"""The rules found when the package was imported."""
