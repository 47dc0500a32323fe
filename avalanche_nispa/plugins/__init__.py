"""NISPA's plugins. Each is an Avalanche ``SupervisedPlugin`` (through
:class:`NISPAPlugin`, which adds the phase hooks and a ``state_dict``) that also works
with other strategies (see each class for how it behaves outside the NISPA phase loop)."""
from .base import NISPAPlugin
from .lr_phase import RestartLRSchedulePerPhase
from .masking import MaskingPlugin, reinitialise_unfrozen_
from .neurogenesis import NeurogenesisPlugin
from .replay import MemoryReplayPlugin
from .reporting import UnitStateReporter
from .rewiring import RewiringPlugin
from .selection import StableSelectionPlugin
from .unfreezing import SelectiveUnfreezingPlugin

__all__ = [
    "NISPAPlugin",
    "MaskingPlugin",
    "StableSelectionPlugin",
    "SelectiveUnfreezingPlugin",
    "NeurogenesisPlugin",
    "RewiringPlugin",
    "UnitStateReporter",
    "MemoryReplayPlugin",
    "RestartLRSchedulePerPhase",
    "reinitialise_unfrozen_",
]
