"""Sparse building blocks: masked layers and their random initialisation."""
from .init import MaskInit, check_density, kaiming_fan_out_, random_connection_mask, sparsify_
from .layers import (
    CANDIDATE,
    PLASTIC,
    STABLE,
    MaskedConv2d,
    MaskedLayer,
    MaskedLinear,
    is_masked_layer,
)

__all__ = [
    "PLASTIC",
    "CANDIDATE",
    "STABLE",
    "MaskedLayer",
    "MaskedLinear",
    "MaskedConv2d",
    "is_masked_layer",
    "MaskInit",
    "check_density",
    "random_connection_mask",
    "sparsify_",
    "kaiming_fan_out_",
]
