"""avalanche-nispa: NISPA (Neuro-Inspired Stability-Plasticity Adaptation, Gurbuz &
Dovrolis, ICML 2022) as an Avalanche strategy built from plugins."""
from .strategy import NISPA
from .units import count_parameters, unit_state_summary
from .checkpoint import CheckpointPlugin, load_checkpoint, save_checkpoint

__version__ = "0.1.0"

__all__ = ["NISPA", "unit_state_summary", "count_parameters", "save_checkpoint",
           "load_checkpoint", "CheckpointPlugin", "__version__"]
