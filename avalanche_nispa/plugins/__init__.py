"""NISPA's plugins. Each is an Avalanche ``SupervisedPlugin`` that also works with other
strategies (see each class for how it behaves outside the NISPA phase loop)."""
from .masking import MaskingPlugin, reinitialise_unfrozen_
from .reporting import UnitStateReporter
from .rewiring import RewiringPlugin
from .selection import StableSelectionPlugin

__all__ = [
    "MaskingPlugin",
    "StableSelectionPlugin",
    "RewiringPlugin",
    "UnitStateReporter",
    "reinitialise_unfrozen_",
]
