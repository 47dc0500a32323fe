"""Plain data: what ``torch.load(weights_only=True)`` reads back.

A checkpoint holds tensors (plain ``Tensor``, on the CPU), numbers, strings, ``None``
and lists/tuples/dicts of them, nothing else, so loading one never runs code.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["to_plain", "to_cpu", "check_plain", "is_plain_value", "qualname"]

_SCALARS = (bool, int, float, str, type(None))


def to_plain(obj: Any, where: str = "value") -> Any:
    """``obj`` with tensors detached, cloned and moved to the CPU, NumPy scalars as
    Python numbers, tuples as lists and dicts rebuilt; anything else is refused."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {key: to_plain(value, f"{where}[{key!r}]") for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(value, f"{where}[{i}]") for i, value in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, _SCALARS):
        return obj
    raise TypeError(f"cannot store {where}, a {type(obj).__name__}, in a checkpoint")


def is_plain_value(value: Any) -> bool:
    return isinstance(value, _SCALARS + (Tensor,))


def check_plain(obj: Any, where: str) -> None:
    """Refuse, naming the place, anything ``torch.load(weights_only=True)`` cannot read."""
    if isinstance(obj, Tensor):
        if type(obj) is not Tensor:
            raise TypeError(f"{where} is a {type(obj).__name__}, not a plain tensor")
        return
    if type(obj) in _SCALARS:  # exact types: subclasses (TorchVersion, enums) fail
        return
    if type(obj) in (dict, OrderedDict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key of type {type(key).__name__}")
            check_plain(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple):
        for index, value in enumerate(obj):
            check_plain(value, f"{where}[{index}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__name__}, which torch.load(weights_only=True) cannot "
        "read; a plugin's state_dict() must hold tensors, numbers, strings and "
        "lists/dicts of them"
    )


def qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def to_cpu(obj: Any) -> Any:
    """Tensors moved to the CPU (no copy when already there), containers rebuilt."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(value) for value in obj)
    return obj

