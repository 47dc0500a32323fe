"""The NISPA strategy (Avalanche glue): the class, its phase loop, the validation
split it stops on, and the checks of its input."""
from .nispa import NISPA

__all__ = ["NISPA"]
