"""NISPA-ready networks: the paper's MLP and ConvNet, the generic sparse multi-task
network and a converter for a user's own feed-forward model."""
from .convert import SUPPORTED_LAYERS, to_nispa
from .network import CLEAN_MASKED_LOGIT, LayerLink, SparseMultiTaskNet, TaskHead
from .zoo import NISPACNN, NISPAMLP

__all__ = [
    "SparseMultiTaskNet",
    "TaskHead",
    "LayerLink",
    "CLEAN_MASKED_LOGIT",
    "NISPAMLP",
    "NISPACNN",
    "to_nispa",
    "SUPPORTED_LAYERS",
]
