"""Save a NISPA run at an experience boundary and resume it bit for bit.

Avalanche's own ``save_checkpoint`` pickles the whole strategy with ``dill`` and is
broken on recent torch releases; a NISPA checkpoint stores only plain data instead,
so it loads with ``torch.load(path, weights_only=True)``. The package:

- :mod:`.api`: :func:`save_checkpoint`, :func:`load_checkpoint`;
- :mod:`.plugin`: :class:`CheckpointPlugin`, saving from inside a training loop;
- :mod:`.state`: what a checkpoint holds, collected and restored (plugins through
  their ``state_dict`` only);
- :mod:`.compat`: the checks that a checkpoint fits the strategy it is loaded into;
- :mod:`.files`: format version, run identity, atomic writes, checked reads;
- :mod:`.evaluator`, :mod:`.metric_state`, :mod:`.plain`: metrics, plain data (the RNG
  streams are :mod:`avalanche_nispa.rng`).
"""
from .api import load_checkpoint, save_checkpoint
from .compat import model_fingerprint
from .files import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, read_checkpoint
from .plugin import CheckpointPlugin

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "model_fingerprint",
    "CheckpointPlugin",
]
