"""The NISPA strategies (Avalanche glue): the task-incremental NISPA and the
class-incremental NISPAReplay, their one phase loop, the validation split they stop
on, and the checks of their input."""
from .nispa import NISPA
from .replay import NISPAReplay, NISPAReplayConfig

__all__ = ["NISPA", "NISPAReplay", "NISPAReplayConfig"]
